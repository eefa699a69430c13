"""Patches, peak selectivity points, purity and cluster strength (docs/science.md; methods §4–5).

Voxel patches are connected components of selective voxels (t above a threshold) in a
voxel map; unit-level measures (peak point, purity) work on the sheet's unit positions.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .. import defaults
from ..errors import TopoviewerError
from .fmri import _cell_indices, contrast_map, voxel_responses
from .selectivity import contrast_masks, welch_t

__all__ = [
    "CATEGORY_RELATIONS",
    "PurityCurve",
    "cluster_strength",
    "disc_centres",
    "disc_means",
    "find_patches",
    "largest_patch",
    "largest_patch_voxels",
    "patch_overlap",
    "patch_units",
    "peak_distance",
    "peak_point",
    "purity_curve",
    "purity_rings",
    "random_pair_distances",
    "relation_pairs",
    "split_halves",
    "voxel_cluster_strength",
]

#: Expected (centre, unit) pairs handled per chunk by :func:`disc_means`.
_PAIRS_PER_CHUNK = 4_000_000


# ---------------------------------------------------------------------- voxel patches
def find_patches(
    t_map,
    threshold=defaults.VOXEL_T_THRESHOLD,
    min_voxels=defaults.PATCH_MIN_VOXELS,
    connectivity=1,
):
    """Patches: connected groups of at least ``min_voxels`` voxels with t > ``threshold``.

    Parameters
    ----------
    t_map : (rows, cols) array
        Voxel selectivity; NaN voxels are never selective.
    threshold : float
        Strict lower bound on t for a selective voxel.
    min_voxels : int
        Smallest patch size; smaller components are dropped.
    connectivity : {1, 2}
        1: voxels sharing an edge are connected (4-neighbourhood, the default; voxels
        touching only at a corner are separate). 2: corners too (8-neighbourhood).

    Returns
    -------
    labels : (rows, cols) int array
        0 outside patches, ``k`` in the k-th largest patch (1-based; equal sizes keep
        raster order of their first voxel).
    sizes : list of int
        Voxel count of each patch, largest first (``sizes[k - 1]`` is patch ``k``).
    """
    components, sizes = _components(t_map, threshold, connectivity)
    order = np.argsort(-sizes, kind="stable")
    order = order[sizes[order] >= min_voxels]
    relabel = np.zeros(len(sizes) + 1, dtype=np.int32)
    relabel[order + 1] = np.arange(1, len(order) + 1)
    return relabel[components], [int(s) for s in sizes[order]]


def largest_patch(t_map, threshold=defaults.VOXEL_T_THRESHOLD, connectivity=1):
    """Mask of the largest connected component with t > ``threshold`` (all False if none).

    Of equally large components the first in raster order wins. No minimum size applies.
    """
    components, sizes = _components(t_map, threshold, connectivity)
    if len(sizes) == 0:
        return np.zeros(components.shape, dtype=bool)
    return components == int(np.argmax(sizes)) + 1


def largest_patch_voxels(t_map, threshold=defaults.VOXEL_T_THRESHOLD, connectivity=1):
    """Size of the largest connected component with t > ``threshold`` (0 if none), even below the patch minimum."""
    _, sizes = _components(t_map, threshold, connectivity)
    return int(sizes.max()) if len(sizes) else 0


def _components(t_map, threshold, connectivity):
    """Connected components of ``t > threshold`` and their sizes (component k at ``sizes[k - 1]``)."""
    t = np.asarray(t_map, dtype=np.float64)
    if t.ndim != 2:
        raise TopoviewerError(f"a t map must be 2-D (rows, cols), got shape {t.shape}")
    if connectivity not in (1, 2):
        raise TopoviewerError(f"connectivity must be 1 (edges) or 2 (edges and corners), got {connectivity}")
    structure = ndimage.generate_binary_structure(2, connectivity)
    components, n = ndimage.label(t > threshold, structure=structure)  # NaN > x is False
    return components, np.bincount(components.ravel(), minlength=n + 1)[1:]


# ---------------------------------------------------------------------- peak points
def peak_point(sheet, values, radius_mm=defaults.PEAK_RADIUS_MM, step_mm=None):
    """Peak selectivity point: centre of the ``radius_mm`` disc with the highest mean value.

    Candidate centres form a regular grid (spacing at most ``step_mm``, default
    ``radius_mm / 4``) over the positions that keep the whole disc inside the sheet.
    NaN values are ignored; a disc with no unit is never the peak. Of equal means the
    first centre in raster order (lowest y, then lowest x) wins.

    Parameters
    ----------
    sheet : Sheet
    values : (n_units,) array
        Unit values, typically d′ for one category.
    radius_mm : float
    step_mm : float, optional

    Returns
    -------
    (x, y) : tuple of float
    """
    centres = disc_centres(sheet, radius_mm, radius_mm / 4.0 if step_mm is None else step_mm)
    means = disc_means(sheet, values, centres, radius_mm)
    if not np.any(np.isfinite(means)):
        raise TopoviewerError(f"no {radius_mm} mm disc inside sheet {sheet.name!r} holds a unit with a finite value")
    x, y = centres[int(np.nanargmax(means))]
    return float(x), float(y)


def disc_means(sheet, values, centres, radius_mm):
    """Mean of the finite unit values within ``radius_mm`` of each centre: (C, 2) → (C,).

    Discs without a finite value give NaN. Vectorised with k-d trees in chunks, so it
    stays fast and bounded in memory for sheets of hundreds of thousands of units.
    """
    values = _unit_vector(sheet, values, float)
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    finite = np.isfinite(values)
    tree = cKDTree(sheet.positions[finite])
    kept = values[finite]
    area = sheet.extent_mm[0] * sheet.extent_mm[1]
    per_centre = max(1.0, len(kept) * math.pi * radius_mm**2 / max(area, 1e-12))
    chunk = max(1, int(_PAIRS_PER_CHUNK / per_centre))
    sums, counts = np.zeros(len(centres)), np.zeros(len(centres))
    for start in range(0, len(centres), chunk):
        block = centres[start : start + chunk]
        pairs = cKDTree(block).sparse_distance_matrix(tree, radius_mm, output_type="coo_matrix")
        sums[start : start + len(block)] = np.bincount(pairs.row, weights=kept[pairs.col], minlength=len(block))
        counts[start : start + len(block)] = np.bincount(pairs.row, minlength=len(block))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def disc_centres(sheet, radius_mm, step_mm):
    """Regular grid of centres (raster order, spacing ≤ ``step_mm``) whose disc fits the sheet."""
    if not radius_mm > 0 or not step_mm > 0:
        raise TopoviewerError(f"radius and step must be positive, got {radius_mm} and {step_mm} mm")
    axes = []
    for lo, span in zip(sheet.origin_mm, sheet.extent_mm):
        free = span - 2.0 * radius_mm
        if free < 0:
            raise TopoviewerError(
                f"a {radius_mm} mm-radius disc does not fit in sheet {sheet.name!r} of extent {sheet.extent_mm}"
            )
        n = int(math.ceil(free / step_mm - 1e-9)) + 1
        axes.append(np.linspace(lo + radius_mm, lo + radius_mm + free, n))
    xx, yy = np.meshgrid(*axes)
    return np.column_stack([xx.ravel(), yy.ravel()])


def patch_units(sheet, center_mm, radius_mm=defaults.PATCH_RADIUS_MM):
    """Patch units: (n_units,) bool mask of the units within ``radius_mm`` of a peak point."""
    return sheet.distances_to(center_mm) <= radius_mm


def peak_distance(sheet, values_a, values_b, radius_mm=defaults.PEAK_RADIUS_MM, step_mm=None):
    """Distance (mm) between the peak points of two value maps (e.g. face and body d′)."""
    xa, ya = peak_point(sheet, values_a, radius_mm, step_mm)
    xb, yb = peak_point(sheet, values_b, radius_mm, step_mm)
    return float(math.hypot(xa - xb, ya - yb))


#: The arrangement of category regions in IT that TDANNs reproduce (Margalit et al., TDANN poster): body
#: patches next to face patches, word patches near faces and bodies, place selectivity far from faces.
#: Each entry is (category a, category b, "near" or "far").
CATEGORY_RELATIONS = (("faces", "bodies", "near"), ("faces", "words", "near"), ("bodies", "words", "near"),
                      ("faces", "places", "far"))


def relation_pairs(categories):
    """The entries of :data:`CATEGORY_RELATIONS` whose two categories are both in ``categories``."""
    return [(a, b, claim) for a, b, claim in CATEGORY_RELATIONS if a in categories and b in categories]


def patch_overlap(mask_a, mask_b) -> float:
    """Dice overlap of two voxel masks, ``2 |A ∩ B| / (|A| + |B|)``: 0 disjoint, 1 identical, NaN if both empty."""
    a, b = np.asarray(mask_a, bool), np.asarray(mask_b, bool)
    if a.shape != b.shape:
        raise TopoviewerError(f"voxel masks of shapes {a.shape} and {b.shape} cannot overlap")
    total = a.sum() + b.sum()
    return float(2.0 * np.count_nonzero(a & b) / total) if total else float("nan")


def random_pair_distances(n=10000, low=1.0, high=9.0, seed=0):
    """Distances between ``n`` pairs of points drawn uniformly in ``[low, high]²``.

    The null distribution for peak distances: on a 10 mm sheet with 1 mm peak discs the
    valid centres span [1, 9] mm. ``low`` and ``high`` may be (x, y) pairs for
    rectangular sheets (``origin + radius`` and ``origin + extent − radius``).
    """
    rng = np.random.default_rng(seed)
    a = rng.uniform(low, high, size=(int(n), 2))
    b = rng.uniform(low, high, size=(int(n), 2))
    return np.hypot(*(a - b).T)


# ---------------------------------------------------------------------- purity
@dataclass(frozen=True)
class PurityCurve:
    """Purity (fraction of selective units) as a function of distance from a patch centre.

    Attributes
    ----------
    centre : (x, y)
        Centre of the purest ``bin_mm`` × ``bin_mm`` region.
    distance_mm : (n_bins,) array
        Bin centres; bin k holds the units at distance ``[k·bin_mm, (k+1)·bin_mm)``.
    purity : (n_bins,) array
        Fraction of selective units per bin, NaN for a bin without units.
    n_units : (n_bins,) int array
        Units per bin.
    bin_mm : float
        Bin width (and region edge).
    tied_centres : (k, 2) array
        Centres of every region as pure as the chosen one (k ≥ 1; the chosen one included).
    spread : (n_bins, 2) array
        Lowest and highest purity per bin over the curves around the tied centres: how much
        the curve depends on the tie-break (equal columns when there is no tie).
    """

    centre: tuple[float, float]
    distance_mm: np.ndarray
    purity: np.ndarray
    n_units: np.ndarray
    bin_mm: float
    tied_centres: np.ndarray | None = None
    spread: np.ndarray | None = None


def purity_curve(sheet, selective, bin_mm=defaults.PURITY_BIN_MM, max_distance_mm=None, min_units=None, values=None):
    """Purity curve around the purest region (Lee et al. 2020, following their ref. 40).

    The sheet is tiled from its origin by non-overlapping ``bin_mm`` squares; the purity
    of a square is its fraction of selective units, and squares with fewer than
    ``min_units`` units are ignored. The centre of the purest square is the patch
    centre. Several squares are often equally pure (e.g. many 100 % squares); the tie
    goes to the square whose 3 × 3 neighbourhood of squares has the highest mean of
    ``values`` over its units (the d′ the selectivity came from), or, without
    ``values``, the highest pooled purity; then to the first in raster order. Every unit
    is then binned by its own distance to that centre in ``bin_mm`` bins. The curves
    around all tied squares give :attr:`PurityCurve.spread`.

    Parameters
    ----------
    sheet : Sheet
    selective : (n_units,) bool array
        E.g. ``dprime > DPRIME_THRESHOLD``.
    bin_mm : float
        Square edge and distance-bin width.
    max_distance_mm : float, optional
        Extent of the curve (rounded up to whole bins); default: the farthest unit.
    min_units : int, optional
        Fewest units a square needs to be a candidate centre; default 3, or 1 on a
        channel-grid sheet (one unit per cell: every cell is a region of its own).
    values : (n_units,) array, optional
        Unit values for the tie-break (typically the d′ thresholded into ``selective``).

    Returns
    -------
    PurityCurve
    """
    selective = _unit_vector(sheet, selective, bool)
    if min_units is None:
        min_units = 1 if sheet.grid_shape else 3
    grid = sheet.grid(bin_mm)
    rows, cols = _cell_indices(sheet.positions, grid)
    size = grid.shape[0] * grid.shape[1]
    flat = rows * grid.shape[1] + cols
    counts = np.bincount(flat, minlength=size).reshape(grid.shape).astype(np.float64)
    hits = np.bincount(flat, weights=selective, minlength=size).reshape(grid.shape)
    valid = counts >= min_units
    if not valid.any():
        raise TopoviewerError(f"no {bin_mm} mm region of sheet {sheet.name!r} holds {min_units} units")
    purity = np.where(valid, hits / np.maximum(counts, 1), -np.inf)
    box = np.ones((3, 3))
    pooled_counts = np.maximum(ndimage.convolve(counts, box, mode="constant"), 1)
    if values is None:
        score = ndimage.convolve(hits, box, mode="constant") / pooled_counts
    else:
        v = np.nan_to_num(_unit_vector(sheet, values, float))
        sums = np.bincount(flat, weights=v, minlength=size).reshape(grid.shape)
        score = ndimage.convolve(sums, box, mode="constant") / pooled_counts
    tied = np.flatnonzero(purity.ravel() == purity.max())
    order = tied[np.argsort(-score.ravel()[tied], kind="stable")]
    r_all, c_all = np.unravel_index(order, grid.shape)
    centres = np.column_stack([grid.origin_mm[0] + (c_all + 0.5) * bin_mm, grid.origin_mm[1] + (r_all + 0.5) * bin_mm])

    if max_distance_mm is None:
        n_bins = int(sheet.distances_to(centres[0]).max() // bin_mm) + 1
    else:
        n_bins = max(1, math.ceil(max_distance_mm / bin_mm - 1e-9))
    curves = [_binned_purity(sheet, selective, c, bin_mm, n_bins) for c in centres]
    stack = np.array([c[0] for c in curves])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bin empty around every tied centre stays NaN
        spread = np.column_stack([np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)])
    return PurityCurve(
        centre=(float(centres[0, 0]), float(centres[0, 1])),
        distance_mm=(np.arange(n_bins) + 0.5) * bin_mm,
        purity=curves[0][0],
        n_units=curves[0][1],
        bin_mm=float(bin_mm),
        tied_centres=centres,
        spread=spread,
    )


def _binned_purity(sheet, selective, centre, bin_mm, n_bins):
    """Purity and unit count in ``n_bins`` distance bins around ``centre``."""
    d = sheet.distances_to(centre)
    k = (d // bin_mm).astype(int)
    keep = k < n_bins
    n_units = np.bincount(k[keep], minlength=n_bins)
    n_sel = np.bincount(k[keep], weights=selective[keep], minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_units > 0, n_sel / n_units, np.nan), n_units


def purity_rings(sheet, curve, pixel_mm):
    """Purity rings: each pixel shows the purity of its distance bin around ``curve.centre``.

    Returns a (rows, cols) float image on ``sheet.grid(pixel_mm)``; pixels whose centre
    lies outside the sheet or beyond the curve's last bin are NaN.
    """
    grid = sheet.grid(pixel_mm)
    centres = grid.centres()
    k = (np.hypot(*(centres - np.asarray(curve.centre)).T) // curve.bin_mm).astype(int)
    (x0, y0), (w, h) = sheet.origin_mm, sheet.extent_mm
    inside = (centres[:, 0] <= x0 + w) & (centres[:, 1] <= y0 + h) & (k < len(curve.purity))
    image = np.full(len(centres), np.nan)
    image[inside] = np.asarray(curve.purity, dtype=np.float64)[k[inside]]
    return image.reshape(grid.shape)


# ---------------------------------------------------------------------- cluster strength
def split_halves(labels, seed=0):
    """Stratified random split of images into two halves: ``(index_a, index_b)``.

    Each category's images are shuffled and the first ⌊n/2⌋ go to half A, the rest to
    half B, so both halves keep the category proportions. Indices are sorted.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    a, b = [], []
    for value in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == value))
        a.append(idx[: len(idx) // 2])
        b.append(idx[len(idx) // 2 :])
    return np.sort(np.concatenate(a)), np.sort(np.concatenate(b))


def cluster_strength(
    sheet,
    responses,
    labels,
    categories,
    category,
    *,
    versus="others",
    seed=0,
    threshold=defaults.VOXEL_T_THRESHOLD,
    connectivity=1,
    fwhm_mm=defaults.FWHM_MM,
    voxel_mm=defaults.VOXEL_MM,
):
    """Cluster strength of a category (Lee et al. 2020), a cross-validated fMRI ROI measure.

    The images are split into stratified halves (:func:`split_halves`). On half A the
    voxel Welch t of ``category`` against ``versus`` defines the ROI: the largest
    connected component of voxels with t > ``threshold`` (:func:`largest_patch`). On
    half B the cluster strength is the sum over ROI voxels of (mean voxel response to
    the category − mean voxel response to the contrast set). Returns 0.0 without ROI.
    To score several categories, voxelise once and call :func:`voxel_cluster_strength`.
    """
    voxels = voxel_responses(sheet, responses, fwhm_mm, voxel_mm)
    return voxel_cluster_strength(
        voxels, labels, categories, category, versus=versus, seed=seed, threshold=threshold, connectivity=connectivity
    )


def voxel_cluster_strength(
    voxels,
    labels,
    categories,
    category,
    *,
    versus="others",
    seed=0,
    threshold=defaults.VOXEL_T_THRESHOLD,
    connectivity=1,
):
    """:func:`cluster_strength` on voxel responses already computed: (n_images, rows, cols)."""
    labels = np.asarray(labels)
    voxels = np.asarray(voxels)
    half_a, half_b = split_halves(labels, seed)
    t = welch_t(voxels[half_a], *contrast_masks(labels[half_a], categories, category, versus))
    roi = largest_patch(t, threshold, connectivity)
    if not roi.any():
        return 0.0
    contrast = contrast_map(voxels[half_b], *contrast_masks(labels[half_b], categories, category, versus))
    return float(np.sum(contrast[roi]))


def _unit_vector(sheet, values, dtype):
    values = np.asarray(values, dtype=dtype)
    if values.shape != (sheet.n_units,):
        raise TopoviewerError(f"sheet {sheet.name!r} has {sheet.n_units} units; got values of shape {values.shape}")
    return values
