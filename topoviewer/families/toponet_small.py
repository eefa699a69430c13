"""A small TopoNet (Deb et al. 2025) for CPU: the sheets are conv channel grids.

Four conv blocks (conv1 … conv4, each followed by a 2 × 2 max-pool except conv4); two of them
are sheets (``sheet_blocks``, default conv3 and conv4). Sheet units are the block's output
channels laid on the TopoNets grid (height = largest divisor ≤ √n); a unit's response is its
channel's spatial mean. Training regularises the sheets' convs (weights with TopoLoss,
responses with the absolute/relative losses). An early sheet (``sheet_blocks = [2, 4]`` with a
wide conv2) is the V1-like sheet of the ``sample-v1`` model.
"""

from __future__ import annotations

from torch import nn

from ..errors import TopoviewerError
from ..model import SheetNet, TopoModel
from ..sheet import Sheet

BLOCKS = 4


def _block(cin, cout, pool=True):
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*(layers + [nn.MaxPool2d(2)] if pool else layers))


class SmallTopoNet(SheetNet):
    """conv1 → conv2 → conv3 → conv4 → global pool → fc; the blocks in ``sheet_blocks`` end stages 0 and 1."""

    n_sheets = 2
    unit_modes = ("channel", "channel")

    def __init__(self, in_channels, widths, n_classes, sheet_blocks=(3, 4)):
        super().__init__()
        blocks = tuple(int(b) for b in sheet_blocks)
        if len(blocks) != 2 or not 1 <= blocks[0] < blocks[1] <= BLOCKS:
            raise TopoviewerError(f"sheet_blocks must be two increasing conv blocks among 1…{BLOCKS}, "
                                  f"got {list(sheet_blocks)}")
        self.sheet_blocks = blocks
        cin = in_channels
        for i, w in enumerate(widths, start=1):
            setattr(self, f"conv{i}", _block(cin, w, pool=i < BLOCKS))
            cin = w
        self.fc = nn.Linear(cin, n_classes)

    def _run(self, first, last, x):
        for i in range(first, last + 1):
            x = getattr(self, f"conv{i}")(x)
        return x

    def stage(self, k, x):
        first = 1 if k == 0 else self.sheet_blocks[k - 1] + 1
        return self._run(first, self.sheet_blocks[k], x)

    def head(self, x):
        return self.fc(self._run(self.sheet_blocks[-1] + 1, BLOCKS, x).mean(dim=(2, 3)))

    def sheet_weight(self, k):
        return getattr(self, f"conv{self.sheet_blocks[k]}")[0].weight


def build_toponet_small(config, sheets=None) -> TopoModel:
    widths = list(config["widths"])
    if len(widths) != BLOCKS:
        raise TopoviewerError(f"toponet_small has {BLOCKS} conv blocks; widths must list {BLOCKS}, got {widths}")
    net = SmallTopoNet(config["in_channels"], widths, config["n_classes"], config["sheet_blocks"])
    if sheets is None:
        sheets = [Sheet.channel_grid(f"conv{b}", widths[b - 1]) for b in net.sheet_blocks]
    c = config["in_channels"]
    return TopoModel(
        net, sheets, "toponet_small", config, input_size=config["input_size"], in_channels=c,
        mean=(0.5,) * c, std=(0.25,) * c, classes=list(config.get("classes") or []),
    )


build_toponet_small.defaults = {
    "input_size": 32, "in_channels": 1, "widths": [32, 64, 128, 256], "sheet_blocks": [3, 4], "n_classes": 20,
    "classes": [],
}
