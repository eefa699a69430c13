"""d′, Welch t, contrast sets and the Poisson noise calibration, checked by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from topoviewer.analysis.selectivity import (
    calibrate_threshold,
    contrast_masks,
    contrasted_categories,
    dprime,
    dprime_maps,
    fraction_selective,
    welch_t,
)
from topoviewer.errors import TopoviewerError

CATEGORIES = ["faces", "bodies", "objects"]

# 2 face images, 3 object images; unit 0 varies, unit 1 is constant,
# unit 2 differs between the groups but has no variance inside them.
IN = np.array([True, True, False, False, False])
OUT = ~IN
RESPONSES = np.array(
    [
        [2.0, 7.0, 1.0],
        [4.0, 7.0, 1.0],
        [1.0, 7.0, 0.0],
        [1.0, 7.0, 0.0],
        [4.0, 7.0, 0.0],
    ]
)


def test_dprime_by_hand():
    # faces: mean 3, unbiased var ((−1)² + 1²) / 1 = 2; objects: mean 2, var (1 + 1 + 4) / 2 = 3
    d = dprime(RESPONSES, IN, OUT)
    assert d[0] == pytest.approx((3.0 - 2.0) / math.sqrt((2.0 + 3.0) / 2.0))
    assert d[1] == 0.0  # zero pooled variance
    assert d[2] == 0.0  # zero pooled variance, even with a mean difference
    assert d.shape == (3,)


def test_welch_t_by_hand_and_zero_variance():
    t = welch_t(RESPONSES, IN, OUT)
    assert t[0] == pytest.approx((3.0 - 2.0) / math.sqrt(2.0 / 2 + 3.0 / 3))
    assert t[1] == 0.0 and t[2] == 0.0


def test_welch_t_matches_scipy_on_voxel_maps():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(13, 3, 4)) + np.arange(13)[:, None, None] % 2
    in_mask = np.arange(13) % 2 == 1
    expected = stats.ttest_ind(values[in_mask], values[~in_mask], axis=0, equal_var=False).statistic
    np.testing.assert_allclose(welch_t(values, in_mask, ~in_mask), expected, rtol=1e-12)


def test_nan_inputs_give_nan_only_where_they_are():
    values = np.ones((4, 2, 2)) * np.arange(4)[:, None, None]
    values[2, 0, 1] = np.nan
    in_mask = np.array([True, True, False, False])
    t = welch_t(values, in_mask, ~in_mask)
    assert np.isnan(t[0, 1])
    # other voxels: in {0, 1}, out {2, 3}: t = −2 / sqrt(0.5/2 + 0.5/2)
    assert t[0, 0] == pytest.approx(-2.0 / math.sqrt(0.5))
    assert np.isnan(dprime(values.reshape(4, 4), in_mask, ~in_mask)[1])


def test_needs_two_images_per_side():
    with pytest.raises(TopoviewerError, match="at least 2"):
        dprime(RESPONSES, np.array([True, False, False, False, False]), OUT)


def test_contrast_masks_others_and_named():
    labels = np.array([0, 1, 2, 0, 2])
    in_mask, contrast = contrast_masks(labels, CATEGORIES, "faces")
    assert in_mask.tolist() == [True, False, False, True, False]
    assert contrast.tolist() == [False, True, True, False, True]
    _, contrast = contrast_masks(labels, CATEGORIES, "faces", versus=["objects"])
    assert contrast.tolist() == [False, False, True, False, True]
    _, contrast = contrast_masks(labels, CATEGORIES, "faces", versus="objects")
    assert contrast.tolist() == [False, False, True, False, True]
    # the category itself is never its own contrast
    in_mask, contrast = contrast_masks(labels, CATEGORIES, "objects", versus=["objects", "bodies"])
    assert not np.any(in_mask & contrast) and contrast.tolist() == [False, True, False, False, False]


def test_unknown_category_lists_the_known():
    labels = np.array([0, 1, 2])
    with pytest.raises(TopoviewerError, match="faces, bodies, objects"):
        contrast_masks(labels, CATEGORIES, "cars")
    with pytest.raises(TopoviewerError, match="unknown category 'cars'"):
        contrast_masks(labels, CATEGORIES, "faces", versus=["cars"])
    with pytest.raises(TopoviewerError, match="no contrast"):
        contrast_masks(labels, CATEGORIES, "faces", versus=["faces"])


def test_dprime_maps_all_categories_and_named_contrast():
    labels = np.array([0, 0, 1, 1, 2, 2])
    responses = np.array([[5.0], [6.0], [1.0], [2.0], [1.0], [3.0]])
    maps = dprime_maps(responses, labels, CATEGORIES)
    assert list(maps) == CATEGORIES
    # faces {5, 6}: mean 5.5, var 0.5; others {1, 2, 1, 3}: mean 1.75, var 0.9167
    assert maps["faces"][0] == pytest.approx(3.75 / math.sqrt((0.5 + 11.0 / 12.0) / 2.0))
    named = dprime_maps(responses, labels, CATEGORIES, versus=["objects"])
    assert list(named) == ["faces", "bodies"]  # objects has no contrast left
    assert named["faces"][0] == pytest.approx(3.5 / math.sqrt((0.5 + 2.0) / 2.0))
    assert contrasted_categories(CATEGORIES, ["objects"]) == ["faces", "bodies"]


def test_fraction_selective_signs_and_nan():
    d = np.array([0.9, 0.85, 0.1, -0.9, -2.0, np.nan])
    assert fraction_selective(d) == pytest.approx(1 / 5)  # strict: 0.85 does not pass
    assert fraction_selective(d, threshold=-0.85) == pytest.approx(2 / 5)
    assert np.isnan(fraction_selective([np.nan]))


def test_calibration_matches_an_independent_fit():
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1, 2], 20)
    base = rng.uniform(1.0, 5.0, size=(1, 40))
    boost = np.where(labels[:, None] == 0, rng.uniform(0.0, 4.0, size=(1, 40)), 0.0)
    responses = base + boost + rng.uniform(0.0, 1.0, size=(60, 40))
    silent = np.zeros((60, 3))  # dead units are left out of the fit
    cal = calibrate_threshold(np.hstack([responses, silent]), labels, CATEGORIES, "faces", gain=2.0, seed=7)

    noisy = np.random.default_rng(7).poisson(2.0 * np.hstack([responses, silent]))[:, :40].astype(float)

    def by_hand(x):
        f, o = x[labels == 0], x[labels != 0]
        return (f.mean(0) - o.mean(0)) / np.sqrt((f.var(0, ddof=1) + o.var(0, ddof=1)) / 2)

    a, b = np.polyfit(by_hand(responses), by_hand(noisy), 1)
    assert cal.slope == pytest.approx(a) and cal.intercept == pytest.approx(b)
    assert cal.threshold == pytest.approx((0.65 - b) / a)
    assert 0 < cal.slope < 1  # noise attenuates d′, so the model threshold is above 0.65
    assert cal.threshold > 0.65


def test_calibration_rejects_negative_responses():
    labels = np.repeat([0, 1], 3)
    with pytest.raises(TopoviewerError, match="non-negative"):
        calibrate_threshold(-np.ones((6, 4)), labels, ["faces", "objects"])
