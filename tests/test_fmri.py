"""Simulated fMRI: voxel responses, voxel t maps, contrast maps, units inside voxels."""

import numpy as np
import pytest
from scipy import stats

from topoviewer.analysis.fmri import contrast_map, units_in_voxels, voxel_responses, voxel_t_maps
from topoviewer.errors import TopoviewerError
from topoviewer.sheet import Sheet

CATEGORIES = ["faces", "bodies", "objects"]


def _lattice_sheet():
    """A 2 × 1.5 mm sheet with one unit on each 0.5 mm voxel centre except the last row."""
    xs = np.arange(4) * 0.5 + 0.25
    positions = [(x, y) for y in (0.25, 0.75) for x in xs]
    return Sheet("s", positions, (2.0, 1.5))


def test_voxel_responses_shape_and_nan_mask():
    sheet = _lattice_sheet()
    responses = np.random.default_rng(0).normal(size=(5, sheet.n_units))
    # FWHM 0.2 mm: the Gaussian (truncated at 4σ = 0.34 mm) reaches only the unit on the centre
    vox = voxel_responses(sheet, responses, fwhm_mm=0.2, voxel_mm=0.5)
    assert vox.shape == (5, 3, 4)
    np.testing.assert_allclose(vox[:, :2].reshape(5, -1), responses, rtol=1e-6)
    assert np.all(np.isnan(vox[:, 2]))  # the empty top row


def test_voxel_t_maps_are_welch_t_per_voxel():
    sheet = _lattice_sheet()
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 4)
    responses = rng.normal(size=(12, sheet.n_units)) + 3.0 * (labels[:, None] == 0) * (np.arange(8) < 2)
    maps = voxel_t_maps(sheet, responses, labels, CATEGORIES, fwhm_mm=0.2, voxel_mm=0.5)
    assert list(maps) == CATEGORIES and maps["faces"].shape == (3, 4)
    expected = stats.ttest_ind(responses[labels == 0], responses[labels != 0], equal_var=False).statistic
    np.testing.assert_allclose(maps["faces"][:2].ravel(), expected, rtol=1e-5)
    assert np.all(np.isnan(maps["faces"][2]))
    named = voxel_t_maps(sheet, responses, labels, CATEGORIES, versus=["objects"], fwhm_mm=0.2, voxel_mm=0.5)
    assert list(named) == ["faces", "bodies"]
    expected = stats.ttest_ind(responses[labels == 0], responses[labels == 2], equal_var=False).statistic
    np.testing.assert_allclose(named["faces"][:2].ravel(), expected, rtol=1e-5)


def test_contrast_map_by_hand():
    values = np.array([[[1.0, np.nan]], [[3.0, 1.0]], [[0.0, 1.0]], [[1.0, 1.0]]])
    out = contrast_map(values, [True, True, False, False], [False, False, True, True])
    assert out[0, 0] == pytest.approx(2.0 - 0.5) and np.isnan(out[0, 1])


def test_units_in_voxels():
    sheet = Sheet("s", [(0.1, 0.1), (0.6, 0.1), (0.9, 0.9), (1.0, 1.0)], (1.0, 1.0))
    mask = np.array([[False, True], [False, True]])  # the right column, x ∈ [0.5, 1]
    assert units_in_voxels(sheet, mask, voxel_mm=0.5).tolist() == [False, True, True, True]
    with pytest.raises(TopoviewerError, match="voxel grid"):
        units_in_voxels(sheet, np.ones((3, 3), bool), voxel_mm=0.5)
