"""The spatial null: every topographic claim against the same sheet with its units shuffled.

A topographic claim ("there is a face patch", "purity falls with distance", "near units
respond alike") is a claim about *where* units sit, not about what they respond to. The
null keeps every unit's responses and shuffles the positions: unit ``i``'s place gets
the responses of unit ``perm[i]`` (one permutation per shuffle, the same for every
image). Each measure is recomputed by exactly the same procedure on every shuffle, so
its null distribution includes the chance patches that a fixed t > 10 / 10-voxel rule
finds on small sheets (docs/science.md, "Measuring as the paper measures").

p-values are one-sided permutation p-values with the observed sheet counted as one of
the arrangements: ``p = (1 + #{null ≥ observed}) / (1 + n)`` for measures where larger is
more topographic (``#{null ≤ observed}`` for the face–body distance, where closer is the
claim). The smallest reachable p is ``1 / (n + 1)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import defaults
from ..errors import TopoviewerError
from .fmri import t_maps
from .patches import _components, disc_centres, patch_overlap, purity_curve, relation_pairs, voxel_cluster_strength
from .selectivity import dprime_maps

__all__ = ["NullTest", "SpatialNull", "spatial_null", "permutation_p"]

#: Pairs of the near (< 1 mm) and far (5–6 mm) correlation bins, as in the hallmark report.
NEAR_MM = (0.0, 1.0)
FAR_MM = (5.0, 6.0)


def permutation_p(observed, null, alternative="greater") -> float:
    """One-sided permutation p-value ``(1 + #{null at least as extreme}) / (1 + n)``.

    ``alternative="greater"``: large values are the effect; ``"less"``: small ones.
    NaN null values are left out; a NaN observation gives NaN.
    """
    null = np.asarray(null, dtype=np.float64)
    null = null[np.isfinite(null)]
    if not np.isfinite(observed):
        return float("nan")
    if alternative == "greater":
        extreme = np.count_nonzero(null >= observed)
    elif alternative == "less":
        extreme = np.count_nonzero(null <= observed)
    else:
        raise TopoviewerError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    return float((1 + extreme) / (1 + len(null)))


@dataclass(frozen=True)
class NullTest:
    """One measure on the sheet and under the spatial null.

    Attributes
    ----------
    observed : float
        The measure on the real arrangement.
    null : (n_shuffles,) array
        The measure on each position-shuffled arrangement.
    alternative : {"greater", "less"}
        Which side is the topographic effect.
    """

    observed: float
    null: np.ndarray
    alternative: str = "greater"

    @property
    def p(self) -> float:
        return permutation_p(self.observed, self.null, self.alternative)

    def percentile(self, q) -> float:
        finite = self.null[np.isfinite(self.null)]
        return float(np.percentile(finite, q)) if len(finite) else float("nan")

    def to_json(self) -> dict:
        finite = self.null[np.isfinite(self.null)]
        return {
            "observed": _num(self.observed),
            "p": _num(self.p),
            "null_mean": _num(finite.mean()) if len(finite) else None,
            "null_p5": _num(self.percentile(5)),
            "null_p95": _num(self.percentile(95)),
            "alternative": self.alternative,
        }


@dataclass(frozen=True)
class SpatialNull:
    """The spatial null of one sheet (see :func:`spatial_null`).

    Attributes
    ----------
    n_shuffles : int
    per_category : dict
        ``{category: {"largest_patch_voxels" | "peak_voxel_t" | "cluster_strength": NullTest}}``.
    purity : dict
        ``{"purity_1_2mm": NullTest}`` for the purity category (empty without it).
    purity_curves : (n_shuffles, n_bins) array or None
        The null's purity curves (bins of ``purity_distance_mm``), for drawing a band.
    purity_distance_mm : (n_bins,) array or None
    near_far : NullTest or None
        Mean response correlation of pairs < 1 mm apart minus that of pairs 5–6 mm apart.
    face_body_distance : NullTest or None
        Distance (mm) between the face and the body d′ peaks (alternative "less").
    relations : dict
        ``{"faces–bodies": {"peak_distance_mm": NullTest, "patch_overlap": NullTest}, …}`` for the pairs of
        :data:`~topoviewer.analysis.patches.CATEGORY_RELATIONS` present: d′ peak distance and Dice overlap
        of the selective voxels (t > threshold), the alternative set by the claim (near: closer and more
        overlap; far: farther and less overlap).
    """

    n_shuffles: int
    per_category: dict
    purity: dict = field(default_factory=dict)
    purity_curves: np.ndarray | None = None
    purity_distance_mm: np.ndarray | None = None
    near_far: NullTest | None = None
    face_body_distance: NullTest | None = None
    relations: dict = field(default_factory=dict)

    def patch_criterion(self, category, q=95.0) -> float:
        """The ``q``-th percentile of the null's largest-cluster size for ``category`` (voxels)."""
        return self.per_category[category]["largest_patch_voxels"].percentile(q)

    def purity_band(self, q=(5.0, 95.0)):
        """(low, high) percentiles of the null purity per distance bin, or None."""
        if self.purity_curves is None:
            return None
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a bin no shuffle reaches stays NaN
            return tuple(np.nanpercentile(self.purity_curves, v, axis=0) for v in q)

    def to_json(self) -> dict:
        out = {
            "n_shuffles": self.n_shuffles,
            "categories": {c: {k: t.to_json() for k, t in tests.items()} for c, tests in self.per_category.items()},
        }
        out.update({k: t.to_json() for k, t in self.purity.items()})
        band = self.purity_band()
        if band is not None:
            out["purity_band"] = {
                "distance_mm": [float(v) for v in self.purity_distance_mm],
                "p5": [_num(v) for v in band[0]],
                "p95": [_num(v) for v in band[1]],
            }
        if self.near_far is not None:
            out["near_minus_far_correlation"] = self.near_far.to_json()
        if self.face_body_distance is not None:
            out["face_body_peak_distance_mm"] = self.face_body_distance.to_json()
        if self.relations:
            out["category_relations"] = {k: {m: t.to_json() for m, t in v.items()} for k, v in self.relations.items()}
        return out


def spatial_null(
    sheet,
    responses,
    labels,
    categories,
    *,
    n_shuffles=100,
    seed=0,
    threshold=defaults.DPRIME_THRESHOLD,
    t_threshold=defaults.VOXEL_T_THRESHOLD,
    fwhm_mm=defaults.FWHM_MM,
    voxel_mm=defaults.VOXEL_MM,
    purity_category="faces",
    split_seed=0,
    max_pair_units=4096,
) -> SpatialNull:
    """Every topographic measure of a sheet, observed and under ``n_shuffles`` position shuffles.

    Measures (each recomputed from scratch on every shuffle by the procedure the
    analysis uses): per category the largest connected cluster of voxels with
    t > ``t_threshold`` (voxels), the peak voxel t and the split-half cluster strength;
    purity at 1–2 mm from the purest region (:func:`purity_curve`, d′ tie-break) of
    ``purity_category``; the near − far response correlation (pairs < 1 mm vs 5–6 mm
    apart); the face–body d′ peak distance; for the category pairs of
    :data:`~topoviewer.analysis.patches.CATEGORY_RELATIONS`, the d′ peak distance and the Dice
    overlap of the selective voxels.

    Parameters
    ----------
    sheet : Sheet
    responses : (n_images, n_units) array
    labels, categories
        Image labels into ``categories``.
    n_shuffles : int
        Number of position shuffles (≥ 1).
    seed : int
        Seed of the permutations.
    threshold : float or dict
        d′ threshold of a selective unit (one value, or one per category).
    t_threshold : float
        Voxel t of a selective voxel.
    fwhm_mm, voxel_mm : float
        Simulated fMRI smoothing and voxel size.
    purity_category : str
        Category of the purity measure (skipped when absent).
    split_seed : int
        Seed of the split halves of cluster strength (as the analysis's ``seed``).
    max_pair_units : int
        Larger sheets use this many random units for the near/far correlation.

    Returns
    -------
    SpatialNull
    """
    r = np.asarray(responses, dtype=np.float64)
    labels = np.asarray(labels)
    if r.ndim != 2 or r.shape[1] != sheet.n_units:
        raise TopoviewerError(f"expected responses (images, {sheet.n_units}), got shape {r.shape}")
    n_shuffles = int(n_shuffles)
    if n_shuffles < 1:
        raise TopoviewerError(f"the spatial null needs at least 1 shuffle, got {n_shuffles}")
    rng = np.random.default_rng(seed)
    n = sheet.n_units
    perms = np.empty((n_shuffles + 1, n), dtype=np.int64)
    perms[0] = np.arange(n)  # the observed arrangement, measured by the same code
    for k in range(1, n_shuffles + 1):
        perms[k] = rng.permutation(n)

    dp = dprime_maps(r, labels, categories)
    cats = list(dp)
    thresholds = {c: float(threshold[c] if isinstance(threshold, dict) else threshold) for c in cats}
    weights, mask, shape = sheet.voxel_weights(fwhm_mm, voxel_mm)
    nan_voxels = mask.ravel()

    pairs = relation_pairs(cats)
    overlap = np.empty((len(pairs), n_shuffles + 1))
    size = np.empty((len(cats), n_shuffles + 1))
    peak_t = np.empty_like(size)
    strength = np.empty_like(size)
    units_by_images = np.ascontiguousarray(r.T)  # (units, images): one gather per shuffle
    for k, perm in enumerate(perms):
        # float32 voxels, as Sheet.voxelise gives the analysis: the observed values match it exactly
        v = np.asarray((weights @ units_by_images[perm]).T, dtype=np.float32, order="C")
        v[:, nan_voxels] = np.nan
        v = v.reshape(len(r), *shape)
        tm = t_maps(v, labels, categories)
        for i, c in enumerate(cats):
            _, sizes = _components(tm[c], t_threshold, 1)
            size[i, k] = sizes.max() if len(sizes) else 0
            peak_t[i, k] = np.nanmax(tm[c]) if np.isfinite(tm[c]).any() else np.nan
            strength[i, k] = voxel_cluster_strength(v, labels, categories, c, seed=split_seed, threshold=t_threshold)
        for j, (a, b, _) in enumerate(pairs):
            overlap[j, k] = patch_overlap(tm[a] > t_threshold, tm[b] > t_threshold)
    per_category = {
        c: {
            "largest_patch_voxels": NullTest(size[i, 0], size[i, 1:]),
            "peak_voxel_t": NullTest(peak_t[i, 0], peak_t[i, 1:]),
            "cluster_strength": NullTest(strength[i, 0], strength[i, 1:]),
        }
        for i, c in enumerate(cats)
    }

    purity, curves, distance = {}, None, None
    if purity_category in dp:
        values = dp[purity_category]
        first = purity_curve(sheet, values > thresholds[purity_category], values=values)
        n_bins = len(first.purity)
        curves = np.full((n_shuffles + 1, n_bins), np.nan)
        curves[0] = first.purity
        for k in range(1, n_shuffles + 1):
            v = values[perms[k]]
            curves[k] = purity_curve(sheet, v > thresholds[purity_category], values=v,
                                     max_distance_mm=n_bins * first.bin_mm).purity
        distance = first.distance_mm
        if n_bins > 1:
            purity["purity_1_2mm"] = NullTest(curves[0, 1], curves[1:, 1])

    near_far = _near_far_null(sheet, r, perms, max_pair_units, seed)
    distances = _peak_distance_null(sheet, dp, pairs, perms)
    relations = {
        f"{a}–{b}": {"peak_distance_mm": NullTest(distances[j, 0], distances[j, 1:], "less" if near else "greater"),
                     "patch_overlap": NullTest(overlap[j, 0], overlap[j, 1:], "greater" if near else "less")}
        for j, (a, b, near) in enumerate((a, b, claim == "near") for a, b, claim in pairs)
    }
    face_body = relations.get("faces–bodies", {}).get("peak_distance_mm")
    return SpatialNull(
        n_shuffles=n_shuffles,
        per_category=per_category,
        purity=purity,
        purity_curves=None if curves is None else curves[1:],
        purity_distance_mm=distance,
        near_far=near_far,
        face_body_distance=face_body,
        relations=relations,
    )


def _near_far_null(sheet, r, perms, max_units, seed, max_pairs=50_000):
    """Near − far mean pair correlation for every arrangement. The pairs are fixed by place;
    the unit correlations are computed once and move with the shuffled units (two gathers per
    shuffle). Sheets larger than ``max_units`` use a random subset of units, shuffled among themselves;
    a bin with more than ``max_pairs`` pairs uses a fixed random subset of them."""
    from scipy.spatial import cKDTree

    n = sheet.n_units
    if n > max_units:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(n, max_units, replace=False))
        perms = np.vstack([np.arange(max_units)] + [rng.permutation(max_units) for _ in range(len(perms) - 1)])
    else:
        keep = np.arange(n)
    x = r[:, keep]
    sd = x.std(axis=0)
    live = sd > 0
    z = np.zeros_like(x)
    z[:, live] = (x[:, live] - x[:, live].mean(axis=0)) / sd[live]
    corr = (z.T @ z / len(z)).astype(np.float32)  # half the memory and the gather traffic
    corr[~live] = np.nan  # a constant unit has no correlation (as correlation_by_distance)
    corr[:, ~live] = np.nan
    pos = sheet.positions[keep]
    tree = cKDTree(pos)
    pairs = []
    for lo, hi in (NEAR_MM, FAR_MM):
        within = tree.query_pairs(hi, output_type="ndarray")
        d = np.hypot(*(pos[within[:, 0]] - pos[within[:, 1]]).T)
        inside = within[(d >= lo) & (d < hi)]
        if len(inside) > max_pairs:  # a fixed random subset: the bin mean to well under 0.01
            inside = inside[np.random.default_rng(seed).choice(len(inside), max_pairs, replace=False)]
        pairs.append(inside)
    if any(len(p) == 0 for p in pairs):
        return None
    out = np.empty(len(perms))
    with np.errstate(all="ignore"):
        for k, perm in enumerate(perms):
            near, far = (np.nanmean(corr[perm[p[:, 0]], perm[p[:, 1]]]) for p in pairs)
            out[k] = near - far
    return NullTest(out[0], out[1:])


def _peak_distance_null(sheet, dp, pairs, perms, radius_mm=defaults.PEAK_RADIUS_MM):
    """d′ peak distance of every pair per arrangement, (pairs, arrangements): disc means as one sparse
    (centres × units) operator, each category's peak found once per arrangement."""
    from scipy import sparse
    from scipy.spatial import cKDTree

    if not pairs:
        return np.empty((0, len(perms)))
    centres = disc_centres(sheet, radius_mm, radius_mm / 4.0)
    near = cKDTree(centres).sparse_distance_matrix(sheet.kdtree(), radius_mm, output_type="coo_matrix")
    member = sparse.csr_matrix((np.ones(len(near.row)), (near.row, near.col)), shape=(len(centres), sheet.n_units))
    counts = np.asarray(member.sum(axis=1)).ravel()
    peaks = {}
    for c in {c for a, b, _ in pairs for c in (a, b)}:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (member @ dp[c][perms].T) / counts[:, None]  # (centres, arrangements)
        means[counts == 0] = -np.inf
        peaks[c] = centres[np.argmax(means, axis=0)]
    return np.array([np.hypot(*(peaks[a] - peaks[b]).T) for a, b, _ in pairs])


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else None
