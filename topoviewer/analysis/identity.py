"""Face identity and viewpoint: tuning along the hierarchy, identity-selective units, decoding.

- :func:`view_invariance` — identity tuning width and head-orientation tuning depth per unit
  (Freiwald & Tsao 2010, as used for the TDANN's cIT → aIT comparison), and population
  indices of identity, view and mirror-symmetric coding from the image-by-image correlation
  of population vectors.
- :func:`identity_units` — identity-selective units by one-way ANOVA (p < 0.01) and their
  encoded identities, single-identity (SI) and multiple-identity (MI) units (after the identity-coding study of a face-trained VGG-16 and human MTL neurons).
- :func:`region_coding` — whether an MI unit's encoded identities lie close together in a face
  feature space (region-based feature coding, same study), against random identity sets.
- :func:`decode` — cross-validated linear SVM decoding of labels from a set of units.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ..errors import TopoviewerError

__all__ = ["IdentityUnits", "RegionCoding", "ViewInvariance", "Decoding", "decode", "identity_units",
           "identity_centroids", "identity_tuning_width", "orientation_tuning_depth", "population_indices",
           "region_coding", "view_invariance", "anova_f"]

#: p-value below which a unit's responses differ between identities (one-way ANOVA).
IDENTITY_ALPHA = 0.01
#: Iteration cap of the linear SVM (scikit-learn's default); fits that do not converge on
#: uninformative units stop there instead of costing minutes.
SVM_MAX_ITER = 1000
#: An identity is encoded by a selective unit when its mean response exceeds the mean over
#: identities by this many standard deviations (of the identity means).
ENCODED_SD = 2.0


def _labels(labels, n, what):
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise TopoviewerError(f"expected one {what} per image ({n}), got shape {labels.shape}")
    return np.unique(labels, return_inverse=True)


def _class_means(responses, inverse, k):
    counts = np.bincount(inverse, minlength=k).astype(np.float64)
    sums = np.zeros((k, responses.shape[1]))
    np.add.at(sums, inverse, responses)
    return sums / counts[:, None], counts


# ---------------------------------------------------------------- tuning per unit

def identity_tuning_width(responses, identity) -> np.ndarray:
    """Identity tuning half-width per unit: the number of identities whose mean response
    exceeds half the unit's largest identity mean (1 = one identity, sharp tuning).

    Responses are assumed non-negative (rectified units); units whose largest identity mean
    is ≤ 0 get NaN.
    """
    r = np.asarray(responses, np.float64)
    names, inverse = _labels(identity, len(r), "identity")
    means, _ = _class_means(r, inverse, len(names))
    peak = means.max(axis=0)
    width = (means > peak / 2).sum(axis=0).astype(np.float64)
    width[peak <= 0] = np.nan
    return width


def orientation_tuning_depth(responses, view, yaws) -> np.ndarray:
    """Head-orientation tuning depth per unit, (R_frontal − R_profile) / (R_frontal + R_profile).

    R_frontal is the mean response to the frontal view (yaw 0), R_profile the mean response
    to the full profile (yaw ±90°) the unit prefers. 0 means the same response frontal and in
    profile (invariance); NaN where the denominator is ≤ 0.

    Parameters
    ----------
    responses : (n_images, n_units) array
    view : (n_images,) int array
        Index into `yaws` of each image.
    yaws : sequence of float
        Yaw of each view in degrees; must contain 0, −90 and 90.
    """
    r = np.asarray(responses, np.float64)
    yaws = [float(y) for y in yaws]
    missing = [y for y in (0.0, -90.0, 90.0) if y not in yaws]
    if missing:
        raise TopoviewerError(f"orientation tuning needs the views 0, -90 and 90 degrees; missing {missing}")
    view = np.asarray(view)
    mean = {y: r[view == yaws.index(y)].mean(axis=0) for y in (0.0, -90.0, 90.0)}
    frontal, profile = mean[0.0], np.maximum(mean[-90.0], mean[90.0])
    total = frontal + profile
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (frontal - profile) / np.where(total > 0, total, 1.0), np.nan)


# ---------------------------------------------------------------- population

def population_indices(responses, identity, view, mirror) -> dict:
    """Identity, view and mirror-symmetry indices from the image-by-image correlation of population vectors.

    ``R[a, b]`` is the Pearson correlation across units of the responses to images a and b.
    Over image pairs of *different views*:

    - ``identity``: mean R of same-identity pairs − mean R of different-identity pairs;
    - ``view`` (viewpoint tuning): over different identities, mean R at the same view −
      mean R at different views;
    - ``mirror``: over different identities and different views, mean R of mirror-symmetric
      views (−yaw, +yaw) − mean R of the other view pairs.

    Parameters
    ----------
    responses : (n_images, n_units) array
    identity, view : (n_images,) arrays
    mirror : (n_views,) int array
        ``mirror[v]`` is the view index mirror-symmetric to view v (its own for the frontal view).
    """
    r = np.asarray(responses, np.float64)
    n = len(r)
    _, ident = _labels(identity, n, "identity")
    view = np.asarray(view)
    if view.shape != (n,):
        raise TopoviewerError(f"expected one view per image ({n}), got shape {view.shape}")
    z = r - r.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise TopoviewerError("an image gives the same response in every unit; population correlations are undefined")
    z /= norm
    corr = z @ z.T
    same_id = ident[:, None] == ident[None, :]
    same_view = view[:, None] == view[None, :]
    mirrored = (np.asarray(mirror)[view][:, None] == view[None, :]) & ~same_view
    off = ~np.eye(n, dtype=bool)

    def diff(a, b):
        return float(corr[a].mean() - corr[b].mean()) if a.any() and b.any() else float("nan")

    other = ~same_id & off
    return {
        "identity": diff(same_id & ~same_view, ~same_id & ~same_view),
        "view": diff(other & same_view, other & ~same_view),
        "mirror": diff(other & mirrored, other & ~same_view & ~mirrored),
    }


@dataclass
class ViewInvariance:
    """Identity and viewpoint tuning of one sheet (see :func:`view_invariance`)."""

    identity_width: np.ndarray        # (n_units,) identity tuning half-width
    orientation_depth: np.ndarray     # (n_units,) head-orientation tuning depth
    population: dict                  # identity / view / mirror indices

    def summary(self) -> dict:
        """Mean identity width, SD of tuning depths (the seed's statistics) and the population indices."""
        w, d = self.identity_width, self.orientation_depth
        return {
            "identity_width_mean": _nanstat(np.nanmean, w),
            "orientation_depth_sd": _nanstat(np.nanstd, d),
            "orientation_depth_mean": _nanstat(np.nanmean, d),
            "units": int(len(w)),
            "population": self.population,
        }


def _nanstat(f, x):
    return float(f(x)) if np.isfinite(x).any() else None


def view_invariance(responses, identity, view, yaws, mirror) -> ViewInvariance:
    """Per-unit tuning and population indices of one sheet on a face-views set.

    Parameters
    ----------
    responses : (n_images, n_units) array
    identity, view : (n_images,) arrays
        Identity label and view index of each image.
    yaws : sequence of float
        Yaw of each view, degrees (needs 0 and ±90).
    mirror : (n_views,) int array
        Mirror view of each view.
    """
    return ViewInvariance(identity_tuning_width(responses, identity),
                          orientation_tuning_depth(responses, view, yaws),
                          population_indices(responses, identity, view, mirror))


# ---------------------------------------------------------------- identity-selective units

def anova_f(responses, labels):
    """One-way ANOVA of every unit's responses across groups: ``(F, p)``, each (n_units,).

    Units with no variance within groups get F = inf, p = 0 when their group means differ,
    and F = 0, p = 1 when the unit is constant.
    """
    from scipy.stats import f as f_dist

    r = np.asarray(responses, np.float64)
    names, inverse = _labels(labels, len(r), "label")
    k, n = len(names), len(r)
    if k < 2 or n <= k:
        raise TopoviewerError(f"an ANOVA needs ≥ 2 groups and more images than groups; got {k} groups, {n} images")
    means, counts = _class_means(r, inverse, k)
    between = (counts[:, None] * (means - r.mean(axis=0)) ** 2).sum(axis=0) / (k - 1)
    within = ((r - means[inverse]) ** 2).sum(axis=0) / (n - k)
    with np.errstate(divide="ignore", invalid="ignore"):
        F = np.where(within > 0, between / np.where(within > 0, within, 1.0), np.where(between > 0, np.inf, 0.0))
    return F, f_dist.sf(F, k - 1, n - k)


@dataclass
class IdentityUnits:
    """Identity-selective units of one sheet (see :func:`identity_units`)."""

    F: np.ndarray           # (n_units,) ANOVA F
    p: np.ndarray           # (n_units,) ANOVA p
    selective: np.ndarray   # (n_units,) bool, p < alpha
    encoded: np.ndarray     # (n_units, n_identities) bool, encoded identities of selective units
    identities: list        # identity labels (columns of `encoded`)

    @property
    def n_encoded(self) -> np.ndarray:
        return self.encoded.sum(axis=1)

    @property
    def single(self) -> np.ndarray:
        """SI units: selective, encoding exactly one identity."""
        return self.selective & (self.n_encoded == 1)

    @property
    def multiple(self) -> np.ndarray:
        """MI units: selective, encoding two or more identities."""
        return self.selective & (self.n_encoded >= 2)

    def summary(self) -> dict:
        n = len(self.selective)
        mi = self.n_encoded[self.multiple]
        return {
            "units": int(n),
            "selective": float(self.selective.mean()),
            "single_identity": float(self.single.mean()),
            "multiple_identity": float(self.multiple.mean()),
            "mi_identities_mean": float(mi.mean()) if mi.size else None,
            "mi_identities_max": int(mi.max()) if mi.size else None,
        }


def identity_units(responses, identity, alpha: float = IDENTITY_ALPHA, sd: float = ENCODED_SD) -> IdentityUnits:
    """Identity-selective units and their encoded identities (the VGG-16 identity-coding study's Methods: ANOVA, then 2 SD).

    A unit is identity-selective when a one-way ANOVA of its responses across identities gives
    p < `alpha`. An identity is *encoded* by a selective unit when its mean response is more
    than `sd` standard deviations (over the identity means, ddof = 1) above the mean of the
    identity means. Selective units encoding one identity are SI units, those encoding several
    MI units.
    """
    r = np.asarray(responses, np.float64)
    names, inverse = _labels(identity, len(r), "identity")
    F, p = anova_f(r, inverse)
    selective = p < alpha
    means, _ = _class_means(r, inverse, len(names))
    centre, spread = means.mean(axis=0), means.std(axis=0, ddof=1)
    encoded = (means > centre + sd * spread).T & selective[:, None]
    return IdentityUnits(F, p, selective, encoded, list(names))


# ---------------------------------------------------------------- region-based feature coding

def identity_centroids(responses, identity) -> np.ndarray:
    """The face feature space of a sheet: each identity's mean response, every unit z-scored over
    identities (constant units dropped). (n_identities, n_units)."""
    r = np.asarray(responses, np.float64)
    names, inverse = _labels(identity, len(r), "identity")
    means, _ = _class_means(r, inverse, len(names))
    sd = means.std(axis=0)
    keep = sd > 0
    return (means[:, keep] - means[:, keep].mean(axis=0)) / sd[keep]


@dataclass
class RegionCoding:
    """Region-based feature coding of MI units (see :func:`region_coding`)."""

    units: np.ndarray       # indices of the MI units
    n_encoded: np.ndarray   # identities each encodes
    distance: np.ndarray    # mean pairwise distance of its encoded identities
    null_mean: np.ndarray   # mean of that distance over random identity sets of the same size
    p: np.ndarray           # share of random sets (plus the unit's) at most as spread
    alpha: float

    @property
    def feature(self) -> np.ndarray:
        """Feature MI units: encoded identities closer together than random sets (p < alpha)."""
        return self.p < self.alpha

    def summary(self) -> dict:
        n = len(self.units)
        return {"mi_units": int(n), "feature_mi": float(self.feature.mean()) if n else None,
                "distance_ratio_median": float(np.median(self.distance / self.null_mean)) if n else None}


def region_coding(units: IdentityUnits, centroids, n_permutations: int = 1000, seed: int = 0,
                  alpha: float = 0.05) -> RegionCoding:
    """Do MI units encode identities that are adjacent in a face feature space?

    After the region-based feature coding of the identity-coding study (its feature MI units: the
    encoded identities cluster in the feature space). **Decision**: instead of a t-SNE map and spike-
    density regions, the identities' distances are Euclidean distances between their `centroids`
    (e.g. :func:`identity_centroids` of the same or an earlier sheet; any (n_identities, d) array),
    and an MI unit's spread is the mean pairwise distance of its encoded identities. Its p is the
    share of identity sets of the same size, drawn at random (`n_permutations`, seeded; every
    set when there are no more than that), whose spread is at most the unit's, counting the unit's
    own set: p = (1 + #null ≤ d) / (1 + N) for random draws, #null ≤ d / N when enumerated.
    """
    c = np.asarray(centroids, np.float64)
    k_ids = units.encoded.shape[1]
    if c.ndim != 2 or len(c) != k_ids:
        raise TopoviewerError(f"centroids must be (identities, features) with {k_ids} rows, got shape {c.shape}")
    from scipy.spatial.distance import cdist

    dist = cdist(c, c)
    mi = np.flatnonzero(units.multiple)
    rng = np.random.default_rng(seed)

    def spread(sets):
        sets = np.asarray(sets)
        k = sets.shape[1]
        return dist[sets[:, :, None], sets[:, None, :]].sum(axis=(1, 2)) / (k * (k - 1))

    nulls = {}
    for k in sorted({int(v) for v in units.n_encoded[mi]}):
        if math.comb(k_ids, k) <= n_permutations:
            nulls[k] = (spread(list(combinations(range(k_ids), k))), True)
        else:
            draws = np.argsort(rng.random((n_permutations, k_ids)), axis=1)[:, :k]
            nulls[k] = (spread(draws), False)
    d, null_mean, p = [], [], []
    for u in mi:
        members = np.flatnonzero(units.encoded[u])
        obs = float(spread(members[None])[0])
        null, exact = nulls[len(members)]
        d.append(obs)
        null_mean.append(float(null.mean()))
        hits = int((null <= obs + 1e-12).sum())
        p.append(hits / len(null) if exact else (1 + hits) / (1 + len(null)))
    return RegionCoding(mi, units.n_encoded[mi], np.array(d), np.array(null_mean), np.array(p), alpha)


# ---------------------------------------------------------------- decoding

@dataclass
class Decoding:
    """Cross-validated decoding accuracy (see :func:`decode`)."""

    accuracy: float | None      # mean over folds (None without units)
    folds: np.ndarray           # accuracy per fold
    chance: float               # 1 / number of classes
    n_units: int

    def summary(self) -> dict:
        sd = float(self.folds.std()) if self.folds.size else None
        return {"accuracy": self.accuracy, "sd": sd, "chance": self.chance, "units": self.n_units}


def decode(responses, labels, units=None, folds: int = 5, seed: int = 0, C: float = 1.0,
           workers: int | None = None) -> Decoding:
    """Stratified `folds`-fold cross-validated linear SVM decoding of `labels` from `units`.

    Each fold standardises the units on its training images and fits scikit-learn's
    ``LinearSVC`` (one-vs-rest, squared hinge, penalty `C`, at most :data:`SVM_MAX_ITER`
    iterations, coordinate order seeded with `seed`, no convergence warnings); the accuracy is
    the share of held-out images labelled correctly. The folds run in `workers` threads
    (default: one per CPU core; liblinear releases the GIL).

    With more units than training images, scikit-learn solves the dual problem, which sees the
    training images only through their inner products. Each such fold is therefore solved in
    the training images' own span: the standardised training responses ``a = u s vᵀ`` (thin
    SVD) become ``u s`` and the held-out ones ``b v`` — the same inner products, hence the same
    dual iterates, weights and predictions (up to rounding), with n_train instead of n_units
    features per coordinate step.

    Parameters
    ----------
    responses : (n_images, n_units) array
    labels : (n_images,) array
    units : int array or bool mask, optional
        The units to decode from (default: all). An empty set gives accuracy None.
    folds : int
        Number of folds; every class needs at least that many images.
    seed : int
        Seed of the fold assignment and of the solver's coordinate order.
    workers : int, optional
        Threads running the folds.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    r = np.asarray(responses, np.float64)
    names, y = _labels(labels, len(r), "label")
    x = r if units is None else r[:, np.asarray(units)]
    chance = 1.0 / len(names)
    if x.shape[1] == 0:
        return Decoding(None, np.zeros(0), chance, 0)
    smallest = np.bincount(y).min()
    if len(names) < 2 or smallest < folds:
        raise TopoviewerError(f"{folds}-fold decoding needs ≥ 2 classes with ≥ {folds} images each; "
                              f"the smallest class has {smallest}")
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    workers = max(1, min(len(splits), workers or os.cpu_count() or 1))
    # one BLAS thread per fold: multithreaded OpenBLAS on busy cores made one SVD 3 s instead of 0.04 s
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = np.array(list(pool.map(lambda s: _fold_accuracy(x, y, *s, C=C, seed=seed), splits)))
    return Decoding(float(scores.mean()), scores, chance, int(x.shape[1]))


def _fold_accuracy(x, y, train, test, *, C, seed) -> float:
    """One fold of :func:`decode`: standardise on `train`, fit the linear SVM, score on `test`."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    scaler = StandardScaler().fit(x[train])
    a, b = scaler.transform(x[train]), scaler.transform(x[test])
    dual = len(train) < x.shape[1]  # scikit-learn's dual="auto" for this loss and penalty
    if dual:  # the same dual problem in the span of the training images (see decode)
        u, s, vt = np.linalg.svd(a, full_matrices=False)
        a, b = u * s, b @ vt.T
    clf = LinearSVC(C=C, dual=dual, max_iter=SVM_MAX_ITER, random_state=seed).fit(a, y[train])
    return float((clf.predict(b) == y[test]).mean())
