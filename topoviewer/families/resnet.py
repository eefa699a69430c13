"""Plain-torch ResNet-18 / ResNet-50 with torchvision parameter names, split into per-block stages.

Used by the TDANN (Margalit et al. 2024) and TopoNets (Deb et al. 2025) loaders and by
"any ResNet + user coordinates". The module tree and every parameter name match
``torchvision.models.resnet18/50`` (``conv1``, ``bn1``, ``layer1.0.conv1``, …, ``fc``), so
published state dicts load with ``strict=True``; torchvision itself is not needed.

* **Stages.** One sheet per residual block: stage 0 = stem (conv1, bn1, relu, maxpool) +
  ``layer1.0``; stage k = block k. ResNet-18 has 8 blocks (``layer1.0`` … ``layer4.1``),
  ResNet-50 16. A stage's output is the block output (after the residual add and ReLU), so
  :meth:`TopoModel.propagate` runs the following blocks on it unchanged.
* **Units.** ``unit_mode="chw"``: every activation value is a unit (TDANN, C-order flat
  index of (C, H, W)); ``"channel"``: a channel's spatial mean (TopoNets channel grid).
* **BlurPool.** TopoNets' ResNets were trained with ffcv-imagenet's anti-aliasing:
  every ``Conv2d`` with stride > 1 and ≥ 16 input channels is replaced by
  :class:`BlurPoolConv2d`, which first blurs each input channel with the fixed 3×3
  binomial filter ``[[1,2,1],[2,4,2],[1,2,1]]/16`` (depthwise, stride 1, padding 1) and
  then applies the original strided conv (module ``.conv``; buffer ``blur_filter`` of
  shape (C_in, 1, 3, 3)). So keys become ``X.conv.weight`` + ``X.blur_filter``. (Source:
  the ``BlurPoolConv2d``/``apply_blurpool`` of ffcv-imagenet's ``train_imagenet.py``,
  copied verbatim in ``toponets/vision/resnet18.py``; rebuilt here from that description.)
* **Input.** :class:`ImageNetTopoModel` resizes the shorter side to ``resize_size`` and
  centre-crops ``input_size`` (torchvision's eval transform: 256 → 224), never squashing.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TopoviewerError
from ..model import SheetNet, TopoModel
from ..sheet import Sheet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: blocks per stage
DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
WIDTHS = (64, 128, 256, 512)

__all__ = [
    "BlurPoolConv2d",
    "ImageNetTopoModel",
    "ResNetSheets",
    "block_dims",
    "block_names",
    "build_resnet",
    "head_from_state",
    "load_weights",
    "resnet_depth_from_keys",
    "resnet_widths_from_keys",
    "strip_prefixes",
]


# ---------------------------------------------------------------------------- blocks
def _conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)

    @property
    def last_conv(self) -> str:
        return "conv2"


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck: the stride sits on the 3×3 ``conv2``."""

    expansion = 4

    def __init__(self, cin, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * 4)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)

    @property
    def last_conv(self) -> str:
        return "conv3"


class BlurPoolConv2d(nn.Module):
    """ffcv-imagenet / TopoNets anti-aliased strided conv: depthwise binomial blur, then ``conv``."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        kernel = torch.tensor([[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]]) / 16.0
        self.conv = conv
        self.register_buffer("blur_filter", kernel.repeat(conv.in_channels, 1, 1, 1))

    def forward(self, x):
        blurred = F.conv2d(x, self.blur_filter, stride=1, padding=(1, 1), groups=self.conv.in_channels)
        return self.conv(blurred)

    @property
    def weight(self):
        return self.conv.weight


def apply_blurpool(module: nn.Module) -> list[str]:
    """Wrap every Conv2d with stride > 1 and ≥ 16 input channels (ffcv-imagenet's rule, in place).

    Returns the dotted names of the wrapped convs.
    """
    wrapped = []

    def visit(mod, prefix):
        for name, child in mod.named_children():
            full = f"{prefix}{name}"
            if isinstance(child, nn.Conv2d) and max(child.stride) > 1 and child.in_channels >= 16:
                setattr(mod, name, BlurPoolConv2d(child))
                wrapped.append(full)
            else:
                visit(child, full + ".")

    visit(module, "")
    return wrapped


# ---------------------------------------------------------------------------- the net
def block_names(depth: int) -> list[str]:
    """``["layer1.0", "layer1.1", …]`` for a ResNet of this depth."""
    if depth not in DEPTHS:
        raise TopoviewerError(f"unsupported ResNet depth {depth}; expected 18, 34 or 50")
    return [f"layer{i + 1}.{j}" for i, n in enumerate(DEPTHS[depth]) for j in range(n)]


def block_dims(depth: int, input_size: int = 224, widths=WIDTHS) -> dict[str, tuple[int, int, int]]:
    """Output (C, H, W) of every block for a square input (layer1 (64, 56, 56) … at 224 px).

    ``widths`` are the four stages' plane counts (torchvision: 64, 128, 256, 512; TDANN's
    ``ResNet18_ChanX`` multiplies them per stage, e.g. ×(1, 2, 1, 1)).
    """
    exp = 4 if depth >= 50 else 1
    out = {}
    side = -(-input_size // 4)  # conv1 stride 2 + maxpool stride 2 (both ceil for padded convs)
    for i, n in enumerate(DEPTHS[depth]):
        if i > 0:
            side = -(-side // 2)
        for j in range(n):
            out[f"layer{i + 1}.{j}"] = (int(widths[i]) * exp, side, side)
    return out


class ResNetSheets(SheetNet):
    """torchvision-compatible ResNet whose stages are its residual blocks.

    Parameters
    ----------
    depth : 18, 34 or 50
    blurpool : bool
        Wrap strided convs in :class:`BlurPoolConv2d` (TopoNets).
    unit_mode : "chw" or "channel", or one of them per block
    head : list of int
        Dimensions of the head after global average pooling: ``[]`` (none: the pooled
        features are the output), ``[512, 1000]`` (one Linear, named ``fc`` as in
        torchvision), or longer (an MLP ``head_mlp`` with ReLUs, e.g. SimCLR's 512→512→128).
    widths : four ints
        Planes of the four stages (torchvision's 64, 128, 256, 512 by default; wider in
        TDANN's ``ResNet18_ChanX``, whose ``channel_multiplier`` scales them per stage).
    """

    def __init__(self, depth: int = 18, blurpool: bool = False, unit_mode="chw", head=(), widths=WIDTHS):
        super().__init__()
        modes = [unit_mode] * len(block_names(depth)) if isinstance(unit_mode, str) else list(unit_mode)
        if len(modes) != len(block_names(depth)) or any(m not in ("chw", "channel") for m in modes):
            raise TopoviewerError(f"unit_mode must be 'chw' or 'channel' (or one per block), got {unit_mode!r}")
        block = Bottleneck if depth >= 50 else BasicBlock
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4 or min(widths) < 1:
            raise TopoviewerError(f"widths must be four positive plane counts, got {widths!r}")
        self.widths = widths
        cin = 64
        for i, (width, n) in enumerate(zip(widths, DEPTHS[depth])):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                s = stride if j == 0 else 1
                down = None
                if j == 0 and (s != 1 or cin != width * block.expansion):
                    down = nn.Sequential(_conv1x1(cin, width * block.expansion, s), nn.BatchNorm2d(width * block.expansion))
                blocks.append(block(cin, width, s, down))
                cin = width * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        head = [int(d) for d in head]
        if head and head[0] != cin:
            raise TopoviewerError(f"the head starts at {head[0]} features but the trunk ends with {cin}")
        if len(head) == 2:
            self.fc = nn.Linear(head[0], head[1])
        elif len(head) > 2:
            layers = []
            for a, b in pairwise(head):
                layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
            self.head_mlp = nn.Sequential(*layers[:-1])
        self.head_dims = head
        self.blurred = apply_blurpool(self) if blurpool else []
        self.block_names = block_names(depth)
        self.n_sheets = len(self.block_names)
        self.unit_modes = tuple(modes)

    def block(self, k: int) -> nn.Module:
        return self.get_submodule(self.block_names[k])

    def stage(self, k, x):
        if k == 0:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.block(k)(x)

    def head(self, x):
        x = torch.flatten(self.avgpool(x), 1)
        if hasattr(self, "fc"):
            return self.fc(x)
        if hasattr(self, "head_mlp"):
            return self.head_mlp(x)
        return x

    def sheet_layer(self, k: int) -> str:
        """Dotted name of the conv whose output channels are sheet k's channels (the block's last conv)."""
        blk = self.block(k)
        return f"{self.block_names[k]}.{blk.last_conv}"

    def sheet_weight(self, k):
        return layer_weight(self, self.sheet_layer(k))

    def conv_layers(self) -> list[str]:
        """Every conv inside the residual blocks (TopoNets regularises all of them: 19 for ResNet-18)."""
        names = []
        for b in self.block_names:
            blk = self.get_submodule(b)
            for c in ("conv1", "conv2", "conv3"):
                if hasattr(blk, c):
                    names.append(f"{b}.{c}")
            if blk.downsample is not None:
                names.append(f"{b}.downsample.0")
        return names


def layer_weight(net: nn.Module, name: str):
    """The weight of a named Conv2d / Linear (through a BlurPool wrapper)."""
    try:
        mod = net.get_submodule(name)
    except AttributeError:
        raise TopoviewerError(f"this model has no layer {name!r}") from None
    if isinstance(mod, BlurPoolConv2d):
        mod = mod.conv
    w = getattr(mod, "weight", None)
    if not isinstance(w, torch.Tensor) or w.ndim < 2:
        raise TopoviewerError(f"layer {name!r} has no Conv2d/Linear weight")
    return w


# ---------------------------------------------------------------------------- the model wrapper
#: ImageNet-family models are plain TopoModels with ``resize_size`` set (256 → crop 224),
#: torchvision's evaluation transform; the name documents intent at the call sites.
ImageNetTopoModel = TopoModel


# ---------------------------------------------------------------------------- registry builder
def default_sheets(net: ResNetSheets, config) -> list[Sheet]:
    """Untrained layouts: channel grids, or retinotopic positions on ``extent_mm`` sheets."""
    from ..positions import retinotopic_positions

    dims = block_dims(net.depth, config["input_size"], net.widths)
    sheets = []
    for k, name in enumerate(net.block_names):
        if net.unit_modes[k] == "channel":
            sheets.append(Sheet.channel_grid(name, dims[name][0]))
        else:
            ext = float(config["extent_mm"])
            sheets.append(Sheet(name, retinotopic_positions(dims[name], ext, seed=k), (ext, ext)))
    return sheets


def build_resnet(config, sheets=None) -> ImageNetTopoModel:
    """Registry builder (arch ``"resnet"``): config keys in ``build_resnet.defaults``."""
    net = ResNetSheets(int(config["depth"]), bool(config["blurpool"]), config["unit_mode"], config["head"],
                       config["widths"])
    return ImageNetTopoModel(
        net, sheets if sheets is not None else default_sheets(net, config), "resnet", config,
        input_size=int(config["input_size"]), in_channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        classes=list(config.get("classes") or []), resize_size=float(config["resize_size"]),
    )


build_resnet.defaults = {
    "depth": 18, "blurpool": False, "unit_mode": "chw", "head": [], "input_size": 224, "resize_size": 256.0,
    "extent_mm": 10.0, "classes": [], "widths": list(WIDTHS),
}


# ---------------------------------------------------------------------------- state-dict helpers
def strip_prefixes(state: dict, prefixes=("module.", "_orig_mod.")) -> dict:
    """Remove wrapper prefixes (DataParallel ``module.``, torch.compile ``_orig_mod.``) from keys."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for p in prefixes:
                if key.startswith(p):
                    key, changed = key.removeprefix(p), True
        out[key] = value
    return out


def tensor_dict(obj) -> dict | None:
    """``obj`` if it is a non-empty ``{str: Tensor}`` dict (a state dict), else None."""
    ok = isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj)
    return obj if ok and all(isinstance(v, torch.Tensor) for v in obj.values()) else None


def find_state_dict(obj) -> dict | None:
    """The state dict inside a checkpoint: bare, ``{"state_dict"}``, ``{"model"}``, ``{"model_state_dict"}``."""
    sd = tensor_dict(obj)
    if sd is not None:
        return sd
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "net", "network"):
            sd = tensor_dict(obj.get(key))
            if sd is not None:
                return sd
    return None


def resnet_depth_from_keys(state: dict) -> int | None:
    """18 / 34 / 50 from the key layout of a (prefix-stripped) torchvision ResNet state dict."""
    if "layer1.0.conv1.weight" not in state or "conv1.weight" not in state:
        return None
    bottleneck = "layer1.0.conv3.weight" in state
    n3 = len({k.split(".")[1] for k in state if k.startswith("layer3.")})
    if bottleneck:
        return 50 if n3 == 6 else None
    return {2: 18, 6: 34}.get(n3)


def resnet_widths_from_keys(state: dict) -> tuple[int, ...]:
    """The four stages' plane counts, read from each stage's first ``conv1`` (plain or BlurPool-wrapped).

    (64, 128, 256, 512) for a torchvision ResNet; (64, 256, 256, 512) for TDANN's
    ``ResNet18_ChanX`` with ``channel_multiplier`` (1, 2, 1, 1).
    """
    widths = []
    for i in range(1, 5):
        w = state.get(f"layer{i}.0.conv1.weight", state.get(f"layer{i}.0.conv1.conv.weight"))
        if not isinstance(w, torch.Tensor) or w.ndim != 4:
            raise TopoviewerError(f"the ResNet weights have no 4-d layer{i}.0.conv1 kernel; cannot read the stage widths")
        widths.append(int(w.shape[0]))
    return tuple(widths)


def head_from_state(state: dict) -> list[int]:
    """Head dims for a torchvision ``fc`` found in ``state`` (``[]`` when absent)."""
    w = state.get("fc.weight")
    return [int(w.shape[1]), int(w.shape[0])] if isinstance(w, torch.Tensor) and w.ndim == 2 else []


def load_weights(net: nn.Module, state: dict, path, what: str = "weights") -> None:
    """``load_state_dict(strict=True)`` with contiguous float weights and one clear error."""
    from . import check_finite

    state = {k: (v.contiguous() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}
    check_finite(state, path)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of the wrong shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})")
        raise TopoviewerError(f"{path}: {what} do not fit the architecture: " + "; ".join(parts))
    net.load_state_dict(OrderedDict((k, state[k].to(own[k].dtype)) for k in own), strict=True)
    net.eval()
