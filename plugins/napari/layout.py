"""Where every sheet map sits in napari's world: the one place for sheet ↔ world offsets.

The viewer shows a grid of *cells*: one **row per sheet** (in network order, the first
sheet on top) and one **column per kind of map** (d′, voxel t, purity | input image,
activation, stimulation). With up to three sheets the two groups of three columns are
stacked (maps above activity) so the grid fits a screen; with more they sit in one row.
Every cell is the sheet drawn at its true size in its own unit (mm, or channel-grid
cells), so sheets sit side by side and one scale bar fits all.

World coordinates are napari's ``(row, col)`` = ``(Y, X)``, Y growing downwards on the
screen. Sheets use figure orientation — **y up**, as :mod:`topoviewer.figures` draws
them — so a cell maps sheet ``(x, y)`` to world ``X = left + (x − x0)`` and
``Y = top + (y0 + height − y)``. Rasters from :meth:`Sheet.rasterise` (row ↔ y) are
therefore flipped vertically for display (:meth:`SheetLayout.display`); nothing else
in the plugin computes an offset.

Pure Python + numpy: no napari, no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["COLUMNS", "COLUMN_TITLES", "Location", "Placement", "SheetLayout", "napari_unit"]

#: Columns of the grid, left to right.
COLUMNS = ("dprime", "voxel_t", "purity", "input", "activation", "stimulation")
#: How a column is named in layer names and cell titles.
COLUMN_TITLES = {
    "dprime": "d′",
    "voxel_t": "voxel t",
    "purity": "purity",
    "input": "input",
    "activation": "activation",
    "stimulation": "stimulation",
}


def napari_unit(sheet_unit: str) -> str:
    """The unit napari (pint) is given for a sheet unit: mm stays mm, a grid cell is a pixel."""
    return "mm" if sheet_unit == "mm" else "pixel"


@dataclass(frozen=True)
class Location:
    """A world point resolved to a sheet: which sheet, which column, where on the sheet."""

    sheet: str
    column: str
    xy: tuple  # (x, y) in sheet units


@dataclass(frozen=True)
class Placement:
    """How to place a raster in a cell: napari ``scale`` and ``translate`` (world, Y then X)."""

    scale: tuple
    translate: tuple


class SheetLayout:
    """The grid of cells for a list of sheets.

    Parameters
    ----------
    sheets : list of Sheet
    gap : float, optional
        Space between cells in sheet units (default: 18 % of the largest sheet edge,
        which leaves room for the cell titles).
    """

    def __init__(self, sheets, gap: float | None = None, stacked: bool | None = None):
        if not sheets:
            raise ValueError("a layout needs at least one sheet")
        self.sheets = list(sheets)
        self.names = [s.name for s in self.sheets]
        self.cell_w = max(s.extent_mm[0] for s in self.sheets)
        self.cell_h = max(s.extent_mm[1] for s in self.sheets)
        self.gap = 0.18 * max(self.cell_w, self.cell_h) if gap is None else float(gap)
        self.unit = napari_unit(self.sheets[0].unit)
        self._by_name = {s.name: s for s in self.sheets}
        #: Few sheets: the "maps" columns (d′, voxel t, purity) above the "activity" columns
        #: (input, activation, stimulation), which keeps the grid about as tall as wide.
        self.stacked = len(self.sheets) <= 3 if stacked is None else bool(stacked)

    # ------------------------------------------------------------------ cells
    def sheet(self, name):
        return self._by_name[name]

    def _block(self, column: str):
        i = COLUMNS.index(column)
        return (i // 3, i % 3) if self.stacked else (0, i)

    def top(self, sheet_name: str, column: str = "dprime") -> float:
        """World Y of the top edge of a sheet's row (in the block of ``column``)."""
        block, _ = self._block(column)
        rows = len(self.names) * (self.cell_h + self.gap)
        return block * (rows + self.gap) + self.names.index(sheet_name) * (self.cell_h + self.gap)

    def left(self, column: str) -> float:
        """World X of the left edge of a column."""
        return self._block(column)[1] * (self.cell_w + self.gap)

    def cell_box(self, sheet_name: str, column: str):
        """(Y0, X0, Y1, X1) world box of a sheet as drawn in a column (its own extent)."""
        s = self.sheet(sheet_name)
        y0, x0 = self.top(sheet_name, column), self.left(column)
        return y0, x0, y0 + s.extent_mm[1], x0 + s.extent_mm[0]

    # ------------------------------------------------------------------ points
    def _offsets(self, sheet_name: str, column: str):
        """(A, B) of the cell's map: world Y = A − y, world X = B + x."""
        s = self.sheet(sheet_name)
        return (self.top(sheet_name, column) + s.origin_mm[1] + s.extent_mm[1], self.left(column) - s.origin_mm[0])

    def to_world(self, sheet_name: str, column: str, xy) -> np.ndarray:
        """Sheet points (x, y) → world (Y, X). ``xy`` is (2,) or (n, 2); returns the same rank."""
        a, b = self._offsets(sheet_name, column)
        p = np.asarray(xy, dtype=float)
        return np.stack([a - p[..., 1], b + p[..., 0]], axis=-1)

    def to_sheet(self, sheet_name: str, column: str, world) -> np.ndarray:
        """World points (Y, X) in a cell → sheet (x, y): the inverse of :meth:`to_world`. Same rank as ``world``."""
        a, b = self._offsets(sheet_name, column)
        w = np.asarray(world, dtype=float)
        return np.stack([w[..., 1] - b, a - w[..., 0]], axis=-1)

    def locate(self, world_position) -> Location | None:
        """A world point (…, Y, X) → the sheet and column under it, with sheet coordinates; None if between cells."""
        Y, X = float(world_position[-2]), float(world_position[-1])
        for name in self.names:
            s = self.sheet(name)
            for column in COLUMNS:
                top, left = self.top(name, column), self.left(column)
                dy, dx = Y - top, X - left
                if 0.0 <= dy <= s.extent_mm[1] and 0.0 <= dx <= s.extent_mm[0]:
                    return Location(name, column, tuple(self.to_sheet(name, column, (Y, X)).tolist()))
        return None

    # ------------------------------------------------------------------ rasters
    def placement(self, sheet_name: str, column: str, shape, pixel: float) -> Placement:
        """Scale/translate for a raster of ``shape`` on ``sheet.grid(pixel)``, flipped by :meth:`display`.

        napari puts pixel centres at ``translate + index · scale``; the flipped raster's
        last row is the sheet's bottom grid row (y from y0), so the first displayed row
        (the grid's top row) may overhang the sheet's top edge when the grid does not
        divide the extent exactly — exactly as the sheet's own grid does.
        """
        s = self.sheet(sheet_name)
        rows = int(shape[-2])
        top_y = s.origin_mm[1] + rows * pixel  # sheet y of the grid's top edge
        world_top = self.top(sheet_name, column) + (s.origin_mm[1] + s.extent_mm[1] - top_y)
        return Placement(
            scale=(float(pixel), float(pixel)),
            translate=(world_top + 0.5 * pixel, self.left(column) + 0.5 * pixel),
        )

    @staticmethod
    def display(raster) -> np.ndarray:
        """A sheet-convention raster (row ↔ y up) → the array napari shows (row 0 on top)."""
        return np.ascontiguousarray(np.asarray(raster)[..., ::-1, :])

    def fit_image(self, sheet_name: str, column: str, image_shape) -> Placement:
        """Scale/translate that fits an (H, W[, C]) picture into a cell (for the input image)."""
        h, w = int(image_shape[0]), int(image_shape[1])
        s = self.sheet(sheet_name)
        k = min(s.extent_mm[1] / h, s.extent_mm[0] / w)
        return Placement(scale=(k, k), translate=(self.top(sheet_name, column) + 0.5 * k,
                                                  self.left(column) + 0.5 * k))

    def extent(self, columns=COLUMNS):
        """World (Y0, X0, Y1, X1) covering the given columns of every row."""
        boxes = np.array([self.cell_box(n, c) for n in self.names for c in columns])
        return float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max())
