"""Correlation vs distance, neighbour agreement, effective dimensionality — by hand."""

import numpy as np
import pytest

from topoviewer.analysis import correlation_by_distance, effective_dimensionality, neighbour_agreement
from topoviewer.sheet import Sheet


def test_correlation_by_distance_hand_example():
    # three units on a line at x = 0, 0.4, 2.0; unit 1 = unit 0 + noise-free copy, unit 2 anti-correlated
    pos = np.array([[0.0, 0.0], [0.4, 0.0], [2.0, 0.0]])
    a = np.array([1.0, 2.0, 3.0, 4.0])
    r = np.column_stack([a, 2 * a + 1, -a])
    curve = correlation_by_distance(r, pos, bin_mm=0.5, max_distance_mm=2.5)
    # pairs: (0,1) d=0.4 r=+1 ; (1,2) d=1.6 r=-1 ; (0,2) d=2.0 r=-1
    np.testing.assert_allclose(curve.edges_mm, [0, 0.5, 1.0, 1.5, 2.0, 2.5])
    np.testing.assert_array_equal(curve.n_pairs, [1, 0, 0, 1, 1])
    np.testing.assert_allclose(curve.correlation[[0, 3, 4]], [1.0, -1.0, -1.0])
    assert np.isnan(curve.correlation[1])
    assert curve.at(0.0, 0.5) == pytest.approx(1.0)
    assert curve.at(1.5, 2.5) == pytest.approx(-1.0)


def test_constant_units_are_left_out():
    pos = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0]])
    r = np.column_stack([[1.0, 2, 3], [5.0, 5, 5], [3.0, 2, 1]])
    curve = correlation_by_distance(r, pos, bin_mm=1.0)
    assert curve.n_pairs.sum() == 1 and curve.correlation[0] == pytest.approx(-1.0)


def test_large_sheet_is_subsampled():
    rng = np.random.default_rng(0)
    r = rng.random((20, 6000))
    pos = rng.random((6000, 2)) * 10
    curve = correlation_by_distance(r, pos, bin_mm=1.0, max_units=500)
    assert curve.n_pairs.sum() == 500 * 499 // 2


def test_neighbour_agreement_smooth_vs_random():
    sheet = Sheet.uniform("s", 2000, (10, 10), seed=1)
    smooth = np.sin(sheet.positions[:, 0] / 2.0)
    noise = np.random.default_rng(2).standard_normal(2000)
    assert neighbour_agreement(sheet, smooth, 0.5) > 0.9
    assert abs(neighbour_agreement(sheet, noise, 0.5)) < 0.1


def test_neighbour_agreement_hand_example():
    # four units: two pairs of neighbours far apart; values 1,1 and 5,5 → perfect agreement
    sheet = Sheet("s", np.array([[0, 0], [0.5, 0], [5, 5], [5.5, 5]]), (6, 6))
    assert neighbour_agreement(sheet, np.array([1.0, 1.0, 5.0, 5.0]), 1.0) == pytest.approx(1.0)
    assert neighbour_agreement(sheet, np.array([1.0, 2.0, 5.0, 6.0]), 1.0) == pytest.approx(
        np.corrcoef([1, 2, 5, 6], [2, 1, 6, 5])[0, 1])


def test_effective_dimensionality():
    rng = np.random.default_rng(0)
    one_d = np.outer(rng.standard_normal(50), rng.standard_normal(10))
    assert effective_dimensionality(one_d) == pytest.approx(1.0)
    iso = np.linalg.qr(rng.standard_normal((50, 50)))[0][:, :4] * np.sqrt(50)  # 4 equal orthogonal directions
    assert effective_dimensionality(iso - 0) == pytest.approx(4.0, rel=0.05)
