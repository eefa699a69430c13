"""The sheet ↔ world layout (pure Python): the one place that knows where a sheet is drawn."""

import numpy as np
import pytest

from topoviewer.sheet import Sheet
from topoviewer_napari.layout import COLUMNS, SheetLayout


@pytest.fixture
def layout():
    a = Sheet.uniform("fc6", 300, (10.0, 10.0), seed=0, label="cIT")
    pos = np.random.default_rng(1).uniform(0, 1, (300, 2)) * (8.0, 6.0) + (1.0, 2.0)
    b = Sheet("fc7", pos, (8.0, 6.0), origin_mm=(1.0, 2.0))
    return SheetLayout([a, b])


def test_round_trip_every_cell(layout):
    rng = np.random.default_rng(0)
    for s in layout.sheets:
        for column in COLUMNS:
            for _ in range(20):
                xy = np.asarray(s.origin_mm) + rng.uniform(0, 1, 2) * np.asarray(s.extent_mm)
                loc = layout.locate(layout.to_world(s.name, column, xy))
                assert loc.sheet == s.name and loc.column == column
                np.testing.assert_allclose(loc.xy, xy, atol=1e-9)
            many = np.asarray(s.origin_mm) + rng.uniform(0, 1, (5, 2)) * np.asarray(s.extent_mm)
            world = layout.to_world(s.name, column, many)  # arrays of points, both ways
            assert world.shape == (5, 2)
            np.testing.assert_allclose(layout.to_sheet(s.name, column, world), many, atol=1e-9)


def test_cells_do_not_overlap_and_gaps_are_empty(layout):
    boxes = [layout.cell_box(s.name, c) for s in layout.sheets for c in COLUMNS]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    y0, x0, y1, x1 = layout.cell_box("fc6", "dprime")
    assert layout.locate((y0 + 1.0, x1 + layout.gap / 2)) is None


def test_y_points_up_within_a_cell(layout):
    top = layout.to_world("fc6", "dprime", (5.0, 9.0))
    bottom = layout.to_world("fc6", "dprime", (5.0, 1.0))
    assert top[0] < bottom[0]  # higher y is higher on screen (smaller world row)


def test_raster_placement_matches_rasterise(layout):
    s = layout.sheet("fc7")
    px = 0.37  # does not divide the extent: the grid overhangs the top edge
    values = np.arange(s.n_units, dtype=float)
    raster = s.rasterise(values, px)
    shown = SheetLayout.display(raster)
    place = layout.placement("fc7", "voxel_t", raster.shape, px)
    for i in range(0, s.n_units, 17):
        Y, X = layout.to_world("fc7", "voxel_t", s.positions[i])
        r = int(round((Y - place.translate[0]) / place.scale[0]))
        c = int(round((X - place.translate[1]) / place.scale[1]))
        r0, c0 = s.grid(px).index_of(s.positions[i])
        assert shown[r, c] == raster[r0, c0]
