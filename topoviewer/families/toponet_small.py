"""A small TopoNet (Deb et al. 2025) for CPU: the sheets are conv channel grids.

Sheet units are output channels of ``conv3`` and ``conv4`` laid on the TopoNets grid
(height = largest divisor ≤ √n); a unit's response is its channel's spatial mean.
Training regularises those convs' weights with TopoLoss.
"""

from __future__ import annotations

from torch import nn

from ..model import SheetNet, TopoModel
from ..sheet import Sheet


def _block(cin, cout, pool=True):
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*(layers + [nn.MaxPool2d(2)] if pool else layers))


class SmallTopoNet(SheetNet):
    """conv1 → conv2 → conv3 (sheet 0) → conv4 (sheet 1) → global pool → fc."""

    n_sheets = 2
    unit_modes = ("channel", "channel")

    def __init__(self, in_channels, widths, n_classes):
        super().__init__()
        w1, w2, w3, w4 = widths
        self.conv1 = _block(in_channels, w1)
        self.conv2 = _block(w1, w2)
        self.conv3 = _block(w2, w3)
        self.conv4 = _block(w3, w4, pool=False)
        self.fc = nn.Linear(w4, n_classes)

    def stage(self, k, x):
        if k == 0:
            return self.conv3(self.conv2(self.conv1(x)))
        return self.conv4(x)

    def head(self, x):
        return self.fc(x.mean(dim=(2, 3)))

    def sheet_weight(self, k):
        return (self.conv3 if k == 0 else self.conv4)[0].weight


def build_toponet_small(config, sheets=None) -> TopoModel:
    widths = list(config["widths"])
    net = SmallTopoNet(config["in_channels"], widths, config["n_classes"])
    if sheets is None:
        sheets = [Sheet.channel_grid("conv3", widths[2]), Sheet.channel_grid("conv4", widths[3])]
    c = config["in_channels"]
    return TopoModel(
        net, sheets, "toponet_small", config, input_size=config["input_size"], in_channels=c,
        mean=(0.5,) * c, std=(0.25,) * c, classes=list(config.get("classes") or []),
    )


build_toponet_small.defaults = {
    "input_size": 32, "in_channels": 1, "widths": [32, 64, 128, 256], "n_classes": 20, "classes": [],
}
