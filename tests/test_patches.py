"""Voxel patches, peak points, purity curves and rings, cluster strength, peak distances."""

import math

import numpy as np
import pytest

from topoviewer.analysis.patches import (
    cluster_strength,
    disc_means,
    find_patches,
    largest_patch,
    largest_patch_voxels,
    patch_overlap,
    patch_units,
    peak_distance,
    peak_point,
    purity_curve,
    purity_rings,
    random_pair_distances,
    relation_pairs,
    split_halves,
    voxel_cluster_strength,
)
from topoviewer.errors import TopoviewerError
from topoviewer.sheet import Sheet

# A hand-drawn t map: "#" = 20, "." = 0, "n" = NaN, "=" exactly the threshold 10.
DRAWING = """
##########..
##.......=..
.....nn.....
.###..#####.
.###..####..
.###........
....###.....
....###.....
""".strip().split()


def _t_map(drawing=DRAWING):
    lookup = {"#": 20.0, ".": 0.0, "n": np.nan, "=": 10.0}
    return np.array([[lookup[ch] for ch in row] for row in drawing])


def test_find_patches_on_a_hand_drawn_map():
    # blobs: top bar 10 + 2 = 12 voxels; right block 5 + 4 = 9 (too small);
    # left block 9 and lower block 6 touch only at a corner, (5, 3) / (6, 4)
    labels, sizes = find_patches(_t_map())
    assert sizes == [12]
    assert labels.shape == (8, 12) and set(np.unique(labels)) == {0, 1}
    assert labels[0, 0] == 1 and labels[1, 1] == 1 and labels[1, 9] == 0  # t == 10 is not selective
    assert labels[3, 6] == 0  # the 9-voxel blob does not count


def test_diagonal_touching_joins_only_with_connectivity_2():
    labels, sizes = find_patches(_t_map(), connectivity=2)
    assert sizes == [15, 12]  # left 9 + lower 6 now one patch, listed largest first
    assert labels[3, 1] == labels[7, 5] == 1 and labels[0, 0] == 2
    assert largest_patch_voxels(_t_map(), connectivity=1) == 12
    assert largest_patch_voxels(_t_map(), connectivity=2) == 15


def test_nan_is_never_selective_and_small_blobs_still_measure():
    t = np.full((4, 4), np.nan)
    assert find_patches(t) == (pytest.approx(np.zeros((4, 4))), [])
    t[:3, :3] = 11.0  # a 9-voxel blob
    labels, sizes = find_patches(t)
    assert sizes == [] and not labels.any()
    assert largest_patch_voxels(t) == 9
    assert largest_patch(t).sum() == 9
    assert largest_patch_voxels(np.zeros((3, 3))) == 0
    with pytest.raises(TopoviewerError, match="connectivity"):
        find_patches(t, connectivity=3)


def _lattice(spacing=0.1, extent=10.0):
    n = int(round(extent / spacing))
    xs = (np.arange(n) + 0.5) * spacing
    xx, yy = np.meshgrid(xs, xs)
    return Sheet("lattice", np.column_stack([xx.ravel(), yy.ravel()]), (extent, extent))


def test_peak_point_finds_a_planted_hot_disc():
    sheet = _lattice()
    values = np.zeros(sheet.n_units)
    values[sheet.disc((3.0, 6.5), 1.0)] = 1.0
    values[sheet.disc((3.0, 6.5), 0.05)] = np.nan  # NaN units are ignored
    assert peak_point(sheet, values, radius_mm=1.0) == pytest.approx((3.0, 6.5))


def test_peak_point_keeps_the_disc_inside_the_sheet():
    sheet = _lattice()
    x_gradient = sheet.positions[:, 0] + 0.01 * sheet.positions[:, 1]
    assert peak_point(sheet, x_gradient, radius_mm=1.0) == pytest.approx((9.0, 9.0))
    assert peak_point(sheet, -x_gradient, radius_mm=2.0) == pytest.approx((2.0, 2.0))


def test_peak_point_ties_and_fit():
    sheet = _lattice(spacing=0.5, extent=4.0)
    assert peak_point(sheet, np.ones(sheet.n_units)) == pytest.approx((1.0, 1.0))  # first in raster order
    with pytest.raises(TopoviewerError, match="does not fit"):
        peak_point(sheet, np.ones(sheet.n_units), radius_mm=2.5)


def test_disc_means_by_hand():
    sheet = Sheet("s", [(1.0, 1.0), (1.5, 1.0), (1.0, 2.1), (3.0, 3.0)], (4.0, 4.0))
    means = disc_means(sheet, np.array([2.0, 4.0, 8.0, 16.0]), [(1.0, 1.0), (3.9, 0.1)], 1.0)
    assert means[0] == pytest.approx(3.0) and np.isnan(means[1])


def test_peak_distance_and_patch_units():
    sheet = _lattice(spacing=0.2)
    a = np.zeros(sheet.n_units)
    b = np.zeros(sheet.n_units)
    a[sheet.disc((2.0, 2.0), 1.0)] = 1.0
    b[sheet.disc((5.0, 6.0), 1.0)] = 1.0
    assert peak_distance(sheet, a, b) == pytest.approx(5.0)
    mask = patch_units(sheet, (2.0, 2.0))
    assert mask.sum() == len(sheet.disc((2.0, 2.0), 3.0)) and mask.dtype == bool


def test_random_pair_distances():
    d = random_pair_distances(20000, seed=1)
    assert d.shape == (20000,) and d.min() >= 0 and d.max() <= 8 * math.sqrt(2)
    # mean distance of two uniform points in a unit square is 0.5214; the square is 8 mm
    assert d.mean() == pytest.approx(8 * 0.5214, abs=0.05)
    wide = random_pair_distances(1000, low=(1.0, 1.0), high=(9.0, 1.0), seed=1)
    assert wide.max() <= 8.0  # a degenerate strip: all pairs on one line


def _purity_layout():
    """3 × 3 mm sheet, 1 mm regions, four units per region at ±0.25 mm from its centre.

    Selective: all 4 units of the centre region, the 2 units of each edge region on the
    side facing the centre, and the inner unit of each corner region.
    """
    positions, selective = [], []
    for cy in (0.5, 1.5, 2.5):
        for cx in (0.5, 1.5, 2.5):
            for dx in (-0.25, 0.25):
                for dy in (-0.25, 0.25):
                    x, y = cx + dx, cy + dy
                    positions.append((x, y))
                    selective.append(abs(x - 1.5) < 1.0 and abs(y - 1.5) < 1.0)
    return Sheet("p", positions, (3.0, 3.0)), np.array(selective)


def test_purity_curve_on_a_hand_placed_layout():
    sheet, selective = _purity_layout()
    # region purities: centre 4/4, edges 2/4, corners 1/4
    curve = purity_curve(sheet, selective)
    assert curve.centre == pytest.approx((1.5, 1.5))
    # bin 0 (< 1 mm): 4 centre units + the 2 inner units of each edge region (d = 0.79 mm), all selective
    # bin 1 (1–2 mm): 2 outer units per edge (d = 1.27) + 4 per corner (d = 1.06–1.77): 4 of 24 selective
    np.testing.assert_allclose(curve.distance_mm, [0.5, 1.5])
    np.testing.assert_array_equal(curve.n_units, [12, 24])
    np.testing.assert_allclose(curve.purity, [1.0, 4 / 24])
    longer = purity_curve(sheet, selective, max_distance_mm=3.0)
    assert longer.n_units.tolist() == [12, 24, 0] and np.isnan(longer.purity[2])
    assert purity_curve(sheet, selective, max_distance_mm=1.0).n_units.tolist() == [12]


def test_purity_ties_go_to_the_purest_neighbourhood():
    # a 4 × 1 mm strip of 1 mm regions with 3 units each; selective counts 0, 2, 3, 3
    positions = [(r + 0.2 + 0.3 * i, 0.5) for r in range(4) for i in range(3)]
    selective = np.array([False] * 3 + [True, True, False] + [True] * 6)
    sheet = Sheet("strip", positions, (4.0, 1.0))
    # regions 2 and 3 are both pure; neighbourhoods pool (2+3+3)/9 and (3+3)/6 → region 3
    assert purity_curve(sheet, selective).centre == pytest.approx((3.5, 0.5))


def test_purity_ignores_sparse_regions():
    positions = [(0.5, 0.5)] + [(r + 0.2 + 0.3 * i, 0.5) for r in (1, 2) for i in range(3)]
    selective = np.array([True, True, False, False, False, False, False])
    sheet = Sheet("strip", positions, (3.0, 1.0))
    assert purity_curve(sheet, selective).centre == pytest.approx((1.5, 0.5))  # 1/3 beats the lone unit
    assert purity_curve(sheet, selective, min_units=1).centre == pytest.approx((0.5, 0.5))
    with pytest.raises(TopoviewerError, match="holds 5 units"):
        purity_curve(sheet, selective, min_units=5)


def test_purity_rings():
    sheet, selective = _purity_layout()
    curve = purity_curve(sheet, selective)
    rings = purity_rings(sheet, curve, pixel_mm=0.5)
    assert rings.shape == (6, 6)
    assert rings[2, 2] == 1.0  # pixel centre (1.25, 1.25): 0.35 mm from the centre
    assert rings[0, 0] == pytest.approx(4 / 24)  # (0.25, 0.25): 1.77 mm
    short = purity_curve(sheet, selective, max_distance_mm=1.0)
    assert np.isnan(purity_rings(sheet, short, pixel_mm=0.5)[0, 0])


def test_split_halves_is_stratified():
    labels = np.array([0] * 6 + [1] * 5 + [2] * 4)
    a, b = split_halves(labels, seed=3)
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(15))
    assert np.bincount(labels[a]).tolist() == [3, 2, 2]
    assert np.bincount(labels[b]).tolist() == [3, 3, 2]
    assert np.array_equal(split_halves(labels, seed=3)[0], a)


def _cluster_example():
    """8 × 8 units on the 0.5 mm voxel centres of a 4 × 4 mm sheet; FWHM 0.2 mm makes voxel = unit.

    Faces add +5 in a 3 × 4 block (12 voxels, the ROI) and in a separate 2 × 2 block (4 voxels).
    """
    xs = (np.arange(8) + 0.5) * 0.5
    xx, yy = np.meshgrid(xs, xs)
    sheet = Sheet("c", np.column_stack([xx.ravel(), yy.ravel()]), (4.0, 4.0))
    labels = np.repeat([0, 1, 2], 8)
    hot = np.zeros((8, 8), bool)
    hot[1:4, 1:5] = True
    hot[6:8, 6:8] = True
    rng = np.random.default_rng(0)
    responses = 1.0 + 0.1 * rng.normal(size=(24, 64)) + 5.0 * np.outer(labels == 0, hot.ravel())
    roi = np.zeros((8, 8), bool)
    roi[1:4, 1:5] = True
    return sheet, responses, labels, roi.ravel()


def test_cluster_strength_on_a_known_roi():
    sheet, responses, labels, roi = _cluster_example()
    categories = ["faces", "bodies", "objects"]
    strength = cluster_strength(sheet, responses, labels, categories, "faces", seed=5, fwhm_mm=0.2)
    _, half_b = split_halves(labels, seed=5)
    rb, lb = responses[half_b], labels[half_b]
    expected = np.sum(rb[lb == 0][:, roi].mean(0) - rb[lb != 0][:, roi].mean(0))
    assert strength == pytest.approx(expected, rel=1e-5)
    assert strength == pytest.approx(12 * 5.0, rel=0.05)
    voxels = sheet.voxelise(responses, fwhm_mm=0.2)
    assert voxel_cluster_strength(voxels, labels, categories, "faces", seed=5) == pytest.approx(strength)


def test_cluster_strength_is_zero_without_roi():
    sheet, responses, labels, _ = _cluster_example()
    flat = 1.0 + 0.1 * np.random.default_rng(1).normal(size=responses.shape)
    assert cluster_strength(sheet, flat, labels, ["faces", "bodies", "objects"], "faces", fwhm_mm=0.2) == 0.0


def test_patch_overlap_and_relation_pairs_by_hand():
    a = np.array([[1, 1, 0], [0, 1, 0]], bool)
    b = np.array([[0, 1, 1], [0, 1, 1]], bool)
    assert patch_overlap(a, b) == pytest.approx(2 * 2 / (3 + 4))
    assert patch_overlap(a, ~a) == 0 and patch_overlap(a, a) == 1
    assert math.isnan(patch_overlap(np.zeros((2, 2), bool), np.zeros((2, 2), bool)))
    with pytest.raises(TopoviewerError, match=r"voxel masks of shapes \(2, 3\) and \(3, 2\) cannot overlap"):
        patch_overlap(a, b.T)
    assert relation_pairs(["faces", "bodies", "places", "cars"]) == [("faces", "bodies", "near"),
                                                                     ("faces", "places", "far")]
