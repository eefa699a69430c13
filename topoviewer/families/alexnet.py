"""AlexNet-style TDANNs (Lee et al. 2020): topographic FC6 ("cIT") and FC7 ("aIT").

Two variants share one module layout with torchvision-compatible parameter names
(``features.*``, ``classifier.1`` = FC6, ``classifier.4`` = FC7, ``classifier.6`` = FC8):

- ``lee2020``: the paper's AlexNet, 224 px RGB input, 4096-unit FC6/FC7 sheets on
  10 mm × 10 mm maps with uniformly random positions.
- ``tdann_small``: the same design for CPU training — a small conv trunk, 32–64 px
  grayscale input, two FC sheets (1024 units by default) on 10 mm × 10 mm maps.
"""

from __future__ import annotations

import torch
from torch import nn

from ..model import SheetNet, TopoModel
from ..sheet import Sheet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _alexnet_features(in_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def _small_features(in_channels: int, widths) -> nn.Sequential:
    layers, c = [], in_channels
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        c = w
    return nn.Sequential(*layers)


FC_NORMS = ("none", "batch", "layer")


def _fc_norm(kind, n: int) -> nn.Module:
    kind = {False: "none", True: "batch", None: "none"}.get(kind, kind)
    if kind not in FC_NORMS:
        raise ValueError(f"fc_norm must be one of {', '.join(FC_NORMS)} (or true/false), not {kind!r}")
    return nn.Identity() if kind == "none" else {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[kind](n)


class AlexNetTDANN(SheetNet):
    """features → avgpool → FC6 (sheet 0) → FC7 (sheet 1) → FC8 (head)."""

    n_sheets = 2
    unit_modes = ("flat", "flat")

    def __init__(self, features: nn.Module, pooled: int, flat: int, fc_units, n_classes: int, dropout: float,
                 fc_norm: bool | str = False, input_norm: bool = False):
        super().__init__()
        self.features = features
        # Optional per-image contrast normalisation of the input (tdann_small): each image is set to
        # zero mean and unit RMS contrast before the trunk, a retina/LGN-like gain control, so that
        # photographs of any brightness and contrast reach the sheets as the diet's images do.
        self.input_norm = bool(input_norm)
        # Optional normalisation of FC6/FC7 pre-activations (tdann_small). "batch" (or True): batch
        # norm, every unit gets a comparable response scale, so no single very active unit dominates a
        # simulated voxel. "layer": layer norm across the sheet, per image — divisive normalisation
        # (Carandini & Heeger 2012): every image drives the sheet with the same mean and spread, so an
        # image's overall energy (texture, edges) does not raise or lower every unit at once. Identity
        # otherwise (no parameters: torchvision/Lee 2020 state dicts are unchanged).
        self.fc_norm = nn.ModuleList([_fc_norm(fc_norm, n) for n in fc_units[:2]])
        self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(flat, fc_units[0]),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_units[0], fc_units[1]),
            nn.ReLU(inplace=True),
            nn.Linear(fc_units[1], n_classes),
        )

    def stage(self, k, x):
        if k == 0:
            if self.input_norm:
                mean = x.mean(dim=(1, 2, 3), keepdim=True)
                x = (x - mean) / (x.std(dim=(1, 2, 3), keepdim=True) + 1e-3)
            x = torch.flatten(self.avgpool(self.features(x)), 1)
            return self.classifier[2](self.fc_norm[0](self.classifier[1](self.classifier[0](x))))
        return self.classifier[5](self.fc_norm[1](self.classifier[4](self.classifier[3](x))))

    def head(self, x):
        return self.classifier[6](x)

    def sheet_weight(self, k):
        return self.classifier[1 if k == 0 else 4].weight


def _fc_sheets(config, sheets):
    if sheets is not None:
        return sheets
    ext = tuple(config["extent_mm"])
    return [
        Sheet.uniform("fc6", config["fc_units"][0], ext, seed=config["positions_seed"], label="cIT"),
        Sheet.uniform("fc7", config["fc_units"][1], ext, seed=config["positions_seed"] + 1, label="aIT"),
    ]


def build_lee2020(config, sheets=None) -> TopoModel:
    net = AlexNetTDANN(_alexnet_features(3), 6, 256 * 36, config["fc_units"], config["n_classes"], config["dropout"])
    return TopoModel(
        net, _fc_sheets(config, sheets), "lee2020", config, input_size=224, in_channels=3,
        mean=IMAGENET_MEAN, std=IMAGENET_STD, classes=list(config.get("classes") or []),
    )


build_lee2020.defaults = {
    "fc_units": [4096, 4096], "n_classes": 1000, "dropout": 0.5, "extent_mm": [10.0, 10.0],
    "positions_seed": 0, "classes": [],
}


def build_tdann_small(config, sheets=None) -> TopoModel:
    widths = list(config["widths"])
    pooled = config["pooled"]
    net = AlexNetTDANN(
        _small_features(config["in_channels"], widths), pooled, widths[-1] * pooled * pooled,
        config["fc_units"], config["n_classes"], config["dropout"], config.get("fc_norm", False),
        bool(config.get("input_norm", False)),
    )
    return TopoModel(
        net, _fc_sheets(config, sheets), "tdann_small", config, input_size=config["input_size"],
        in_channels=config["in_channels"], mean=(0.5,) * config["in_channels"], std=(0.25,) * config["in_channels"],
        classes=list(config.get("classes") or []),
    )


build_tdann_small.defaults = {
    "input_size": 32, "in_channels": 1, "widths": [16, 32, 64, 64], "pooled": 2, "fc_units": [1024, 1024],
    "n_classes": 20, "dropout": 0.0, "fc_norm": False, "input_norm": False, "extent_mm": [10.0, 10.0], "positions_seed": 0, "classes": [],
}
