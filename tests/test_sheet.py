"""Sheet geometry: FWHM → σ, voxelisation by hand, voxel masking, nearest-unit rasters."""

import math

import numpy as np
import pytest

from topoviewer.errors import TopoviewerError
from topoviewer.sheet import Sheet, sigma_from_fwhm


def test_sigma_from_fwhm():
    assert sigma_from_fwhm(1.0) == pytest.approx(1.0 / 2.354820045, rel=1e-9)
    assert sigma_from_fwhm(2.3548200450309493) == pytest.approx(1.0)


def test_voxelise_is_the_gaussian_weighted_mean():
    # two 0.5 mm voxels with centres (0.25, 0.25) and (0.75, 0.25); unit 0 sits on voxel 0's centre
    positions = [(0.25, 0.25), (0.5, 0.25), (0.75, 0.45), (0.9, 0.1)]
    values = np.array([1.0, 2.0, 4.0, 8.0])
    sheet = Sheet("s", positions, (1.0, 0.5))
    sigma = 1.0 / 2.354820045
    expected = []
    for cx, cy in [(0.25, 0.25), (0.75, 0.25)]:
        g = [math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)) for x, y in positions]
        expected.append(sum(v * w for v, w in zip(values, g)) / sum(g))
    out = sheet.voxelise(values, fwhm_mm=1.0, voxel_mm=0.5)
    assert out.shape == (1, 2)
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)
    batch = sheet.voxelise(np.stack([values, 2 * values]), fwhm_mm=1.0, voxel_mm=0.5)
    assert batch.shape == (2, 1, 2)
    np.testing.assert_allclose(batch[1, 0], 2 * np.array(expected), rtol=1e-6)


def test_voxels_without_a_unit_within_two_sigma_are_nan():
    # units only at x ≤ 0.5; σ = 0.2123 mm, 2σ = 0.4247 mm
    sheet = Sheet("s", [(0.25, 0.25), (0.5, 0.25)], (3.0, 0.5))
    out = sheet.voxelise(np.array([1.0, 3.0]), fwhm_mm=0.5, voxel_mm=0.5)[0]
    assert out.shape == (6,)  # one row of six voxels
    # voxel centres x = 0.25, 0.75, 1.25, …: nearest unit at 0, 0.25, 0.75, … mm
    assert np.all(np.isfinite(out[:2])) and np.all(np.isnan(out[2:]))


def test_rasterise_shows_the_nearest_unit():
    sheet = Sheet("s", [(0.5, 0.5), (1.5, 0.5), (0.5, 1.5), (1.5, 1.5)], (2.0, 2.0))
    image = sheet.rasterise(np.array([1.0, 2.0, 3.0, 4.0]), pixel_mm=0.5)
    # row ↔ y, column ↔ x
    expected = [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    np.testing.assert_array_equal(image, expected)


def test_rasterise_masks_pixels_far_from_every_unit():
    # mean spacing sqrt(4 / 2) = 1.41 mm: pixels farther than 2.12 mm are NaN
    sheet = Sheet("s", [(0.5, 0.5), (1.0, 0.5)], (4.0, 1.0))
    row = sheet.rasterise(np.array([1.0, 2.0]), pixel_mm=0.5)[0]
    assert row[0] == 1.0 and row[3] == 2.0  # x = 0.25 → unit 0; x = 1.75 → unit 1
    assert np.isnan(row[-1])  # x = 3.75 is 2.75 mm from unit 1


def test_wrong_value_length_is_a_user_error():
    sheet = Sheet("s", [(0.5, 0.5), (1.5, 0.5)], (2.0, 1.0))
    with pytest.raises(TopoviewerError, match="2 units"):
        sheet.voxelise(np.ones(3))
