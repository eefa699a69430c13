"""TopoNets (Deb et al. 2025): BlurPool ResNet-18/50, ViT-B/32 and NanoGPT checkpoints.

Detection is by key (docs/formats.md §2), after stripping ``module.`` / ``_orig_mod.``:

=====================================================  =====================================
key                                                    family
=====================================================  =====================================
``layer2.0.conv1.blur_filter``                         BlurPool ResNet-18 (plain state dict)
``layer2.0.conv2.blur_filter``                         BlurPool ResNet-50 (plain state dict)
``encoder.layers.encoder_layer_0.mlp.0.weight``        ViT-B/32 (``{"model", "args", …}``)
``transformer.h.0.mlp.c_fc.weight``                    NanoGPT (``{"model", "model_args"}``)
=====================================================  =====================================

Sheets live on TopoNets' channel grid (height = largest divisor ≤ √n; unit i at
(i // W, i % W)), one per residual / transformer block:

* **ResNets** — sheet ``layerX.Y`` = the output channels of the block's last conv
  (``conv2`` in ResNet-18, ``conv3`` in ResNet-50; TopoLoss-regularised, as are all the
  other convs of the blocks: their weight maps are available by name through
  :mod:`topoviewer.weightmaps`). A unit's response is its channel's spatial mean of the
  block output (after the residual add); :meth:`propagate` runs the next blocks.
* **ViT-B/32** — sheet ``encoder_layer_i`` = the output features of the block's last MLP
  linear ``mlp.3`` (the TopoLoss layer); a unit's response is the block output (residual
  stream) feature averaged over tokens; propagation runs the next encoder blocks.
* **NanoGPT** — sheet ``h.i.mlp.c_fc`` = the c_fc output features (3072 for width 768).
  It is a text model: image responses and propagation are refused with a clear message;
  weight maps work, and :func:`token_responses` gives c_fc responses to token ids.

All sizes (depth, width, heads where recorded, vocabulary, context) are read from the
weights and ``args`` / ``model_args``, so shrunken variants load too.
"""

from __future__ import annotations

import argparse
import math
import re
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TopoviewerError
from ..model import SheetNet, TopoModel
from ..sheet import Sheet
from .resnet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageNetTopoModel,
    ResNetSheets,
    block_dims,
    find_state_dict,
    head_from_state,
    load_weights,
    resnet_depth_from_keys,
    resnet_widths_from_keys,
    strip_prefixes,
    tensor_dict,
)

__all__ = [
    "SAFE_GLOBALS",
    "NanoGPTSheets",
    "VisionTransformerSheets",
    "detect_nanogpt",
    "detect_resnet",
    "detect_vit",
    "load_nanogpt",
    "load_resnet",
    "load_vit",
    "read_topoloss_config",
    "token_responses",
]

#: Harmless classes that TopoNets training checkpoints pickle (``args``); allowed by io.load.
SAFE_GLOBALS = [argparse.Namespace]

#: ffcv-imagenet validation: centre crop 224/256 of the shorter side, resized to 256 px.
FFCV_RES = 256
FFCV_CROP_RATIO = 224 / 256


def _state(obj) -> dict | None:
    sd = find_state_dict(obj)
    return None if sd is None else strip_prefixes(sd)


def _extras(obj) -> dict:
    return obj if isinstance(obj, dict) and tensor_dict(obj) is None else {}


# ---------------------------------------------------------------------------- TopoLoss configs
def read_topoloss_config(path) -> dict[str, dict]:
    """A ``topoloss`` ``save_json`` file → ``{layer_name: {"factor_h", "factor_w", "scale", …}}``.

    The file is a list of dicts with ``layer_name``, ``factor_h``, ``factor_w``,
    ``interpolation``, ``scale``, ``name``; extra fields are kept, missing ones defaulted.
    """
    import json

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TopoviewerError(f"{path}: not a readable TopoLoss JSON config ({exc})") from None
    if isinstance(data, dict):
        data = data.get("layer_wise_configs") or data.get("losses") or data.get("layers") or [data]
    if not isinstance(data, list):
        raise TopoviewerError(f"{path}: expected a list of layer configs")
    out = {}
    for item in data:
        if not isinstance(item, dict) or "layer_name" not in item:
            raise TopoviewerError(f"{path}: every layer config needs a 'layer_name' (got {str(item)[:80]})")
        cfg = dict(item)
        cfg.setdefault("factor_h", 3.0)
        cfg.setdefault("factor_w", cfg["factor_h"])
        cfg.setdefault("scale", 1.0)
        out[str(item["layer_name"])] = cfg
    return out


def _topoloss_meta(options) -> dict:
    cfg = options.get("topoloss_config")
    return read_topoloss_config(cfg) if cfg else {}


# ---------------------------------------------------------------------------- BlurPool ResNets
def detect_resnet(obj) -> bool:
    sd = _state(obj)
    return sd is not None and ("layer2.0.conv1.blur_filter" in sd or "layer2.0.conv2.blur_filter" in sd)


def load_resnet(obj, path, device: str = "cpu", positions=None, **options):
    """A TopoNets BlurPool ResNet-18/50 state dict → TopoModel (channel-grid sheets per block)."""
    path = Path(path)
    state = _state(obj)
    depth = resnet_depth_from_keys(state)
    if depth is None:
        raise TopoviewerError(f"{path}: BlurPool keys found but the trunk is not a ResNet-18/50")
    head = head_from_state(state)
    widths = resnet_widths_from_keys(state)
    net = ResNetSheets(depth, True, "channel", head, widths)
    expected = {k for k in net.state_dict() if k.endswith("blur_filter")}
    found = {k for k in state if k.endswith("blur_filter")}
    if expected != found:
        raise TopoviewerError(
            f"{path}: BlurPool wrappers do not match ffcv's rule (stride > 1, ≥ 16 input channels): "
            f"expected {sorted(expected)[:4]}, found {sorted(found)[:4]}"
        )
    dims = block_dims(depth, FFCV_RES, widths)
    if positions is not None:
        from ..positions import load_positions, sheets_from_positions

        loaded, _ = load_positions(positions, net.block_names)
        sheets, modes = sheets_from_positions(net.block_names, dims, loaded, source=positions)
        net.unit_modes = tuple(modes)
    else:
        sheets = [Sheet.channel_grid(b, dims[b][0]) for b in net.block_names]
        modes = list(net.unit_modes)
    load_weights(net, state, path)
    config = {
        "depth": depth, "blurpool": True, "unit_mode": list(modes), "head": head, "input_size": FFCV_RES,
        "resize_size": FFCV_RES / FFCV_CROP_RATIO, "extent_mm": 10.0, "classes": [], "widths": list(widths),
    }
    meta = {
        "family": f"toponets-resnet{depth}",
        "modality": "vision",
        "source": {"file": str(path), "layout": "state dict"},
        "sheet_layers": {b: net.sheet_layer(k) for k, b in enumerate(net.block_names)},
        "topoloss_layers": net.conv_layers(),
        "blurpool_layers": list(net.blurred),
        "topoloss_config": _topoloss_meta(options),
        "preprocess": "ffcv validation: centre crop 224/256 of the shorter side, resized to 256 px; ImageNet mean/std",
        "responses": "channel = spatial mean of the block output",
    }
    if positions is not None:
        meta["positions"] = {"source": str(positions), "guessed": False, "scale": "as given"}
    model = ImageNetTopoModel(
        net, sheets, "resnet", config, input_size=FFCV_RES, in_channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        meta=meta, name=path.stem, resize_size=FFCV_RES / FFCV_CROP_RATIO,
    )
    return model.to(device)


# ---------------------------------------------------------------------------- ViT
_VIT_KEY = "encoder.layers.encoder_layer_0.mlp.0.weight"
_VIT_KEY_OLD = "encoder.layers.encoder_layer_0.mlp.linear_1.weight"


def _vit_state(obj):
    sd = _state(obj)
    if sd is None or not (_VIT_KEY in sd or _VIT_KEY_OLD in sd):
        return None
    # torchvision < 0.13 named the MLP linears linear_1 / linear_2 (its loader remaps them the same way)
    return {re.sub(r"\.mlp\.linear_1\.", ".mlp.0.", re.sub(r"\.mlp\.linear_2\.", ".mlp.3.", k)): v
            for k, v in sd.items()}


def detect_vit(obj) -> bool:
    return _vit_state(obj) is not None


class _EncoderBlock(nn.Module):
    def __init__(self, heads: int, hidden: int, mlp_dim: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(hidden, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(hidden, mlp_dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp_dim, hidden),
                                 nn.Dropout(0.0))

    def forward(self, inp):
        x = self.ln_1(inp)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x) + inp
        return x + self.mlp(self.ln_2(x))


class _Encoder(nn.Module):
    def __init__(self, seq_len, layers, heads, hidden, mlp_dim):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.zeros(1, seq_len, hidden))
        self.dropout = nn.Dropout(0.0)
        self.layers = nn.Sequential(
            OrderedDict((f"encoder_layer_{i}", _EncoderBlock(heads, hidden, mlp_dim)) for i in range(layers))
        )
        self.ln = nn.LayerNorm(hidden, eps=1e-6)


class VisionTransformerSheets(SheetNet):
    """torchvision ``VisionTransformer`` (same parameter names), one stage per encoder block.

    A stage's output is the block's token sequence as a (B, D, T, 1) tensor so that the
    ``"channel"`` unit mode averages each feature over the tokens.
    """

    def __init__(self, image_size, patch_size, layers, heads, hidden, mlp_dim, head_dims=()):
        super().__init__()
        self.image_size, self.patch_size, self.hidden = image_size, patch_size, hidden
        self.conv_proj = nn.Conv2d(3, hidden, kernel_size=patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden))
        seq = (image_size // patch_size) ** 2 + 1
        self.encoder = _Encoder(seq, layers, heads, hidden, mlp_dim)
        mods = OrderedDict()
        head_dims = list(head_dims)
        if len(head_dims) == 3:  # representation_size: pre_logits + tanh
            mods["pre_logits"] = nn.Linear(head_dims[0], head_dims[1])
            mods["act"] = nn.Tanh()
            mods["head"] = nn.Linear(head_dims[1], head_dims[2])
        elif len(head_dims) == 2:
            mods["head"] = nn.Linear(head_dims[0], head_dims[1])
        self.heads = nn.Sequential(mods)
        self.n_sheets = layers
        self.unit_modes = ("channel",) * layers

    def stage(self, k, x):
        if k == 0:
            n = x.shape[0]
            x = self.conv_proj(x).reshape(n, self.hidden, -1).permute(0, 2, 1)
            x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
            x = self.encoder.dropout(x + self.encoder.pos_embedding)
        else:
            x = x.squeeze(-1).transpose(1, 2)
        x = self.encoder.layers[k](x)
        return x.transpose(1, 2).unsqueeze(-1)

    def head(self, x):
        x = self.encoder.ln(x.squeeze(-1).transpose(1, 2))
        return self.heads(x[:, 0]) if len(self.heads) else x[:, 0]

    def sheet_layer(self, k):
        return f"encoder.layers.encoder_layer_{k}.mlp.3"

    def sheet_weight(self, k):
        return self.encoder.layers[k].mlp[3].weight


_VIT_HEADS = {"vit_b_16": (768, 12), "vit_b_32": (768, 12), "vit_l_16": (1024, 16), "vit_l_32": (1024, 16),
              "vit_h_14": (1280, 16)}


def _vit_heads(args, hidden) -> int:
    if args is not None and getattr(args, "num_heads", None):
        return int(args.num_heads)
    model_name = str(getattr(args, "model", "") or "")
    if model_name in _VIT_HEADS and _VIT_HEADS[model_name][0] == hidden:
        return _VIT_HEADS[model_name][1]
    by_width = {768: 12, 1024: 16, 1280: 16}
    if hidden in by_width:
        return by_width[hidden]
    heads = max(1, hidden // 64)
    while hidden % heads:
        heads -= 1
    return heads


def load_vit(obj, path, device: str = "cpu", **options):
    """A TopoNets ViT training checkpoint (``model`` + ``args``) → TopoModel."""
    path = Path(path)
    state = _vit_state(obj)
    args = _extras(obj).get("args")
    if args is not None and not isinstance(args, argparse.Namespace):
        args = argparse.Namespace(**args) if isinstance(args, dict) else None
    try:
        proj = state["conv_proj.weight"]
        pos = state["encoder.pos_embedding"]
    except KeyError as exc:
        raise TopoviewerError(f"{path}: ViT weights lack {exc.args[0]!r}") from None
    hidden, patch = int(proj.shape[0]), int(proj.shape[-1])
    grid = math.isqrt(int(pos.shape[1]) - 1)
    if grid * grid + 1 != pos.shape[1]:
        raise TopoviewerError(f"{path}: position embedding of {pos.shape[1]} tokens is not a square grid + class token")
    image_size = grid * patch
    layers = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"encoder\.layers\.encoder_layer_(\d+)\.", k)))
    mlp_dim = int(state[_VIT_KEY].shape[0])
    heads = _vit_heads(args, hidden)
    if "heads.pre_logits.weight" in state:
        w = state["heads.pre_logits.weight"]
        head_dims = [hidden, int(w.shape[0]), int(state["heads.head.weight"].shape[0])]
    elif "heads.head.weight" in state:
        head_dims = [hidden, int(state["heads.head.weight"].shape[0])]
    else:
        head_dims = []
    net = VisionTransformerSheets(image_size, patch, layers, heads, hidden, mlp_dim, head_dims)
    load_weights(net, state, path)
    crop = int(getattr(args, "val_crop_size", 0) or 224)
    resize = float(getattr(args, "val_resize_size", 0) or 256)
    if crop != image_size:  # the recipe's crop must be the model's input; keep the recipe's ratio
        resize, crop = resize * image_size / crop, image_size
    sheets = [Sheet.channel_grid(f"encoder_layer_{i}", hidden) for i in range(layers)]
    config = {"image_size": image_size, "patch_size": patch, "layers": layers, "heads": heads, "hidden": hidden,
              "mlp_dim": mlp_dim, "head": head_dims, "resize_size": resize, "classes": []}
    meta = {
        "family": "toponets-vit",
        "modality": "vision",
        "source": {"file": str(path), "layout": "training checkpoint", "args_model": getattr(args, "model", None),
                   "epoch": _extras(obj).get("epoch") if isinstance(_extras(obj).get("epoch"), int) else None},
        "sheet_layers": {f"encoder_layer_{i}": net.sheet_layer(i) for i in range(layers)},
        "topoloss_layers": [net.sheet_layer(i) for i in range(layers)],
        "topoloss_config": _topoloss_meta(options),
        "attention_heads": heads,
        "preprocess": f"resize shorter side to {resize:g}, centre-crop {crop}, ImageNet mean/std",
        "responses": "feature = block output (residual stream) averaged over tokens",
    }
    model = ImageNetTopoModel(
        net, sheets, "vit", config, input_size=image_size, in_channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        meta=meta, name=path.stem, resize_size=resize,
    )
    return model.to(device)


def build_vit(config, sheets=None) -> ImageNetTopoModel:
    """Registry builder (arch ``"vit"``)."""
    c = config
    net = VisionTransformerSheets(c["image_size"], c["patch_size"], c["layers"], c["heads"], c["hidden"],
                                  c["mlp_dim"], c["head"])
    if sheets is None:
        sheets = [Sheet.channel_grid(f"encoder_layer_{i}", c["hidden"]) for i in range(c["layers"])]
    return ImageNetTopoModel(net, sheets, "vit", c, input_size=c["image_size"], in_channels=3, mean=IMAGENET_MEAN,
                             std=IMAGENET_STD, classes=list(c.get("classes") or []), resize_size=c["resize_size"])


build_vit.defaults = {"image_size": 224, "patch_size": 32, "layers": 12, "heads": 12, "hidden": 768,
                      "mlp_dim": 3072, "head": [768, 1000], "resize_size": 256.0, "classes": []}


# ---------------------------------------------------------------------------- NanoGPT
_GPT_KEY = "transformer.h.0.mlp.c_fc.weight"


def _gpt_state(obj):
    sd = _state(obj)
    if sd is None or _GPT_KEY not in sd:
        return None
    if any(".attn.attention.q_proj." in k for k in sd):  # HuggingFace GPT-Neo shares nanoGPT's MLP names
        raise TopoviewerError(
            "this checkpoint is a GPT-Neo (HuggingFace GPTNeoForCausalLM: attn.attention.q_proj/k_proj/v_proj), "
            "e.g. a GPT-Neo-125M TopoNet; topoviewer opens the nanoGPT TopoNets (attn.c_attn) only"
        )
    return sd


def detect_nanogpt(obj) -> bool:
    return _gpt_state(obj) is not None


class _LayerNorm(nn.Module):
    def __init__(self, n, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class _Attention(nn.Module):
    def __init__(self, n_embd, n_head, bias):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.n_head = n_head

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class _MLP(nn.Module):
    def __init__(self, n_embd, bias):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)


class _Block(nn.Module):
    def __init__(self, n_embd, n_head, bias):
        super().__init__()
        self.ln_1 = _LayerNorm(n_embd, bias)
        self.attn = _Attention(n_embd, n_head, bias)
        self.ln_2 = _LayerNorm(n_embd, bias)
        self.mlp = _MLP(n_embd, bias)

    def forward(self, x, record=None):
        x = x + self.attn(self.ln_1(x))
        h = self.mlp.c_fc(self.ln_2(x))
        if record is not None:
            record.append(h)
        return x + self.mlp.c_proj(self.mlp.gelu(h))


class NanoGPTSheets(SheetNet):
    """Karpathy's nanoGPT (same parameter names, without the tied ``lm_head``); sheets = every
    block's ``mlp.c_fc`` output."""

    def __init__(self, n_layer=12, n_head=12, n_embd=768, vocab_size=50304, block_size=1024, bias=False):
        super().__init__()
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(vocab_size, n_embd),
            "wpe": nn.Embedding(block_size, n_embd),
            "drop": nn.Dropout(0.0),
            "h": nn.ModuleList([_Block(n_embd, n_head, bias) for _ in range(n_layer)]),
            "ln_f": _LayerNorm(n_embd, bias),
        })
        # nanoGPT's lm_head is tied to wte and only makes next-token logits, which no sheet needs:
        # it is left out (so the own format, which refuses shared tensors, can save the model)
        self.block_size = block_size
        self.n_sheets = n_layer
        self.unit_modes = ("channel",) * n_layer

    def stage(self, k, x):
        raise TopoviewerError(
            "NanoGPT is a language model: it has no responses to images and its c_fc sheets cannot be propagated "
            "from image input; use weight maps (topoviewer.weightmaps) or token_responses(model, token_ids)"
        )

    def head(self, x):  # pragma: no cover - stage refuses first
        raise TopoviewerError("NanoGPT is a language model; image logits are not available")

    def sheet_weight(self, k):
        return self.transformer.h[k].mlp.c_fc.weight

    def sheet_layer(self, k):
        return f"transformer.h.{k}.mlp.c_fc"

    def c_fc_activations(self, idx):
        """Token ids (B, T) → list of the c_fc outputs (B, T, 4·n_embd), one per block."""
        if idx.shape[1] > self.block_size:
            raise TopoviewerError(f"sequence of {idx.shape[1]} tokens exceeds the context of {self.block_size}")
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        rec = []
        for block in self.transformer.h:
            x = block(x, rec)
        return rec


def token_responses(model: TopoModel, token_ids) -> dict:
    """NanoGPT c_fc responses to token ids: ``{sheet: (B, N)}``, each feature averaged over tokens."""
    import numpy as np

    if not isinstance(model.net, NanoGPTSheets):
        raise TopoviewerError("token_responses needs a NanoGPT model")
    ids = torch.as_tensor(np.asarray(token_ids), dtype=torch.long)
    if ids.ndim == 1:
        ids = ids[None]
    vocab = model.net.transformer.wte.weight.shape[0]
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        raise TopoviewerError(f"token ids must lie in [0, {vocab})")
    with torch.inference_mode():
        acts = model.net.c_fc_activations(ids.to(model.device))
    return {s.name: a.mean(dim=1).float().cpu().numpy() for s, a in zip(model.sheets, acts)}


def load_nanogpt(obj, path, device: str = "cpu", **options):
    """A TopoNets NanoGPT checkpoint (``model`` + ``model_args``) → TopoModel (weight maps; text model)."""
    path = Path(path)
    state = _gpt_state(obj)
    margs = _extras(obj).get("model_args") or {}
    if not isinstance(margs, dict):
        margs = vars(margs) if isinstance(margs, argparse.Namespace) else {}
    # drop the causal-mask buffers of non-flash nanoGPT builds; they are not weights
    state = {k: v for k, v in state.items() if not (k.endswith(".attn.bias") and v.ndim == 4)}
    n_layer = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"transformer\.h\.(\d+)\.", k)))
    vocab, n_embd = (int(d) for d in state["transformer.wte.weight"].shape)
    block_size = int(state["transformer.wpe.weight"].shape[0])
    bias = "transformer.h.0.mlp.c_fc.bias" in state
    n_head = int(margs.get("n_head") or max(1, n_embd // 64))
    if n_embd % n_head:
        raise TopoviewerError(f"{path}: model_args n_head={n_head} does not divide the width {n_embd}")
    for key, found in (("n_layer", n_layer), ("n_embd", n_embd), ("vocab_size", vocab), ("block_size", block_size)):
        if margs.get(key) not in (None, found):
            raise TopoviewerError(f"{path}: model_args says {key}={margs[key]} but the weights have {found}")
    state.pop("lm_head.weight", None)  # tied to transformer.wte.weight; see NanoGPTSheets
    net = NanoGPTSheets(n_layer, n_head, n_embd, vocab, block_size, bias)
    load_weights(net, state, path)
    sheets = [Sheet.channel_grid(f"h.{i}.mlp.c_fc", 4 * n_embd) for i in range(n_layer)]
    config = {"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd, "vocab_size": vocab, "block_size": block_size,
              "bias": bias}
    meta = {
        "family": "toponets-nanogpt",
        "modality": "text",
        "responses": "weight maps only for images; token_responses() for token ids",
        "source": {"file": str(path), "layout": "nanoGPT checkpoint",
                   "iter_num": _extras(obj).get("iter_num") if isinstance(_extras(obj).get("iter_num"), int) else None},
        "sheet_layers": {s.name: net.sheet_layer(i) for i, s in enumerate(sheets)},
        "topoloss_layers": [net.sheet_layer(i) for i in range(n_layer)],
        "topoloss_config": _topoloss_meta(options),
    }
    model = TopoModel(net, sheets, "nanogpt", config, input_size=32, in_channels=1, meta=meta, name=path.stem)
    return model.to(device)


def build_nanogpt(config, sheets=None) -> TopoModel:
    """Registry builder (arch ``"nanogpt"``)."""
    c = config
    net = NanoGPTSheets(c["n_layer"], c["n_head"], c["n_embd"], c["vocab_size"], c["block_size"], c["bias"])
    if sheets is None:
        sheets = [Sheet.channel_grid(f"h.{i}.mlp.c_fc", 4 * c["n_embd"]) for i in range(c["n_layer"])]
    return TopoModel(net, sheets, "nanogpt", c, input_size=32, in_channels=1)


build_nanogpt.defaults = {"n_layer": 12, "n_head": 12, "n_embd": 768, "vocab_size": 50304, "block_size": 1024,
                          "bias": False}
