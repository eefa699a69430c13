"""Microstimulation patterns, outside sites, lesions and propagation through a fake model."""

import numpy as np
import pytest

from topoviewer.analysis.stimulation import (
    lesion_disc,
    lesion_random,
    microstimulate,
    outside_site,
    stimulation_pattern,
)
from topoviewer.errors import TopoviewerError
from topoviewer.sheet import Sheet


def test_stimulation_decay_at_known_distances():
    # distances 0, 0.5, 1, 2 (on the rim: inside) and 2.5 mm (outside) from (5, 5)
    sheet = Sheet("s", [(5.0, 5.0), (5.5, 5.0), (5.0, 6.0), (7.0, 5.0), (5.0, 2.5)], (10.0, 10.0))
    out = stimulation_pattern(sheet, (5.0, 5.0), np.full(5, 2.0), radius_mm=2.0, sigma_mm=1.0)
    # 2·exp(−d²/2): exp(−0.125) = 0.8824969, exp(−0.5) = 0.6065307, exp(−2) = 0.1353353
    np.testing.assert_allclose(out, [2.0, 1.7649938, 1.2130613, 0.2706706, 0.0], rtol=1e-6)
    with pytest.raises(TopoviewerError, match="5 units"):
        stimulation_pattern(sheet, (5.0, 5.0), np.ones(4))


def _lattice(spacing=0.25, extent=10.0):
    xs = (np.arange(int(extent / spacing)) + 0.5) * spacing
    xx, yy = np.meshgrid(xs, xs)
    return Sheet("lattice", np.column_stack([xx.ravel(), yy.ravel()]), (extent, extent))


def test_outside_site_avoids_patches_and_edges():
    sheet = _lattice()
    patch = sheet.distances_to((3.0, 3.0)) <= 1.0
    for seed in range(5):
        x, y = outside_site(sheet, patch, radius_mm=2.0, rng=seed, rule="strict")
        assert 2.0 <= x <= 8.0 and 2.0 <= y <= 8.0  # the disc fits the sheet
        assert sheet.distances_to((x, y))[patch].min() > 2.0  # and holds no patch unit
    assert outside_site(sheet, patch, rng=3) == outside_site(sheet, patch, rng=3)


def test_outside_site_with_a_voxel_patch_mask():
    sheet = _lattice()
    voxels = np.zeros((20, 20), bool)  # 0.5 mm voxels
    voxels[:, :12] = True  # everything left of x = 6 mm
    x, y = outside_site(sheet, voxels, radius_mm=1.0, rng=0, voxel_mm=0.5, rule="strict")
    assert x - 5.75 > 1.0 and x <= 9.0  # clear of the last patch voxel centre (x = 5.75)
    with pytest.raises(TopoviewerError, match="shape"):
        outside_site(sheet, np.zeros((3, 3), bool))


def test_outside_site_fails_when_patches_cover_the_sheet():
    sheet = _lattice()
    with pytest.raises(TopoviewerError, match="outside the identified patches"):
        outside_site(sheet, np.ones(sheet.n_units, bool))


def test_lesions():
    sheet = Sheet("s", [(0.5, 0.5), (1.5, 0.5), (3.5, 0.5)], (4.0, 1.0))
    activity = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    out = lesion_disc(activity, sheet, (1.0, 0.5), 0.5)
    np.testing.assert_array_equal(out, [[0, 0, 3], [0, 0, 6]])
    assert out.dtype == np.float32 and activity[0, 0] == 1.0  # a copy
    silenced = lesion_random(np.ones((3, 10)), 0.5, rng=0)
    assert (silenced == 0).sum(axis=1).tolist() == [5, 5, 5]
    assert np.array_equal(silenced[0], silenced[2])  # the same units for every image
    with pytest.raises(TopoviewerError, match=r"\[0, 1\]"):
        lesion_random(np.ones(4), 1.5)


class FakeModel:
    """Three sheets a (4 units) → b (2 units) → c (1 unit), each step ReLU(W·x + b)."""

    def __init__(self):
        self.sheets = [
            Sheet("a", [(0.5, 0.5), (1.5, 0.5), (0.5, 1.5), (1.5, 1.5)], (2.0, 2.0)),
            Sheet("b", [(0.5, 0.5), (1.5, 0.5)], (2.0, 1.0)),
            Sheet("c", [(0.5, 0.5)], (1.0, 1.0)),
        ]
        self.layers = {
            "b": (np.array([[1.0, 1.0, 0.0, 0.0], [0.0, -1.0, -1.0, 1.0]]), np.array([0.0, 0.5])),
            "c": (np.array([[2.0, 5.0]]), np.array([-1.0])),
        }

    def _index(self, name):
        names = [s.name for s in self.sheets]
        if name not in names:
            raise TopoviewerError(f"unknown layer {name!r}")
        return names.index(name)

    def sheet(self, name):
        return self.sheets[self._index(name)]

    def next_sheet(self, name):
        k = self._index(name) + 1
        return self.sheets[k].name if k < len(self.sheets) else None

    def propagate(self, sheet_name, activity, to=None):
        x = np.atleast_2d(np.asarray(activity, dtype=float))
        last = len(self.sheets) - 1 if to is None else self._index(to)
        out = {}
        for k in range(self._index(sheet_name) + 1, last + 1):
            w, b = self.layers[self.sheets[k].name]
            x = np.maximum(x @ w.T + b, 0.0)
            out[self.sheets[k].name] = x
        return out


def test_microstimulate_propagates_through_the_fake_model():
    model = FakeModel()
    stim = microstimulate(model, "a", (0.5, 0.5), np.array([2.0, 2.0, 4.0, 3.0]), radius_mm=1.0, sigma_mm=1.0)
    # units at d = 0, 1, 1, √2: activity = [2, 2e^−½, 4e^−½, 0] = [2, 1.2130613, 2.4261226, 0]
    np.testing.assert_allclose(stim.activity, [2.0, 1.2130613, 2.4261226, 0.0], rtol=1e-6)
    assert stim.stimulated_units == 3 and stim.layer == "a" and stim.next_layer == "b"
    assert stim.site_mm == (0.5, 0.5) and stim.radius_mm == 1.0
    # b = ReLU([2 + 1.2130613, −1.2130613 − 2.4261226 + 0.5]) = [3.2130613, 0]; c = ReLU(2·3.2130613 − 1)
    np.testing.assert_allclose(stim.propagated["b"], [3.2130613, 0.0], rtol=1e-6)
    np.testing.assert_allclose(stim.propagated["c"], [5.4261226], rtol=1e-6)
    only_b = microstimulate(model, "a", (0.5, 0.5), np.ones(4), to="b")
    assert list(only_b.propagated) == ["b"]


def test_microstimulate_errors():
    model = FakeModel()
    with pytest.raises(TopoviewerError, match="unknown layer"):
        microstimulate(model, "z", (0.5, 0.5), np.ones(4))
    with pytest.raises(TopoviewerError, match="last sheet"):
        microstimulate(model, "c", (0.5, 0.5), np.ones(1))
    with pytest.raises(TopoviewerError, match="outside sheet"):
        microstimulate(model, "a", (5.0, 0.5), np.ones(4))
