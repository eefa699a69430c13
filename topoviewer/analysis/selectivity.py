"""Category selectivity of units and voxels: d′, Welch t, noise calibration (docs/science.md; methods §3).

Responses are always ``(n_images, n_units)`` float arrays; ``labels`` are ``(n_images,)``
integers indexing a ``categories`` list of names. A selectivity contrast compares the
images of one category (the *in* set) with a *contrast* set: every other category
(``versus="others"``) or a named subset such as the non-face objects.

Variances use the unbiased estimator (``ddof=1``) throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import defaults
from ..errors import TopoviewerError

__all__ = [
    "Calibration",
    "calibrate_threshold",
    "contrast_masks",
    "contrasted_categories",
    "dprime",
    "dprime_maps",
    "fraction_selective",
    "welch_t",
]


def contrast_masks(labels, categories, category, versus="others"):
    """Boolean image masks for one category and its contrast set.

    Parameters
    ----------
    labels : (n_images,) array of int
        Category index of each image, into ``categories``.
    categories : list of str
        Category names.
    category : str
        The category whose selectivity is measured.
    versus : "others", str or list of str
        The contrast set: ``"others"`` for all other categories, or the name(s) of the
        contrast categories (e.g. the non-face objects). ``category`` itself is never
        part of its own contrast set.

    Returns
    -------
    in_mask, contrast_mask : (n_images,) bool arrays
        Disjoint masks of the category's images and the contrast images.

    Raises
    ------
    TopoviewerError
        If a name is not in ``categories`` or the contrast set is empty.
    """
    labels = np.asarray(labels)
    idx = _category_index(categories, category)
    named = (_category_index(categories, n) for n in _versus_names(categories, versus))
    contrast = [i for i in named if i != idx]
    if not contrast:
        raise TopoviewerError(f"category {category!r} has no contrast categories in versus={versus!r}")
    return labels == idx, np.isin(labels, contrast)


def dprime(responses, in_mask, contrast_mask):
    """Sensitivity index d′ of every unit for the in set against the contrast set.

    ``d′ = (mean X_c − mean X_o) / sqrt((var X_c + var X_o) / 2)`` with unbiased
    variances (``ddof=1``). A unit with zero pooled variance gets d′ = 0.

    Parameters
    ----------
    responses : (n_images, n_units) array
    in_mask, contrast_mask : (n_images,) bool arrays
        The category's images and the contrast images; each needs at least 2 images.

    Returns
    -------
    (n_units,) float64 array
    """
    xc, xo = _groups(responses, in_mask, contrast_mask)
    diff = xc.mean(axis=0) - xo.mean(axis=0)
    pooled = np.sqrt((xc.var(axis=0, ddof=1) + xo.var(axis=0, ddof=1)) / 2.0)
    return _safe_ratio(diff, pooled)


def welch_t(values, in_mask, contrast_mask):
    """Welch's t statistic along axis 0 for the in set against the contrast set.

    ``t = (mean X_c − mean X_o) / sqrt(var X_c / N_c + var X_o / N_o)`` with unbiased
    variances (``ddof=1``), as ``scipy.stats.ttest_ind(equal_var=False)``. Works on any
    trailing shape: ``(n_images, n_units)`` or voxel maps ``(n_images, rows, cols)``.
    A NaN input (a masked voxel) gives NaN; zero standard error gives t = 0 (such a
    unit or voxel carries no evidence either way, as for :func:`dprime`).

    Returns
    -------
    float64 array of shape ``values.shape[1:]``
    """
    xc, xo = _groups(values, in_mask, contrast_mask)
    diff = xc.mean(axis=0) - xo.mean(axis=0)
    se = np.sqrt(xc.var(axis=0, ddof=1) / len(xc) + xo.var(axis=0, ddof=1) / len(xo))
    return _safe_ratio(diff, se)


def dprime_maps(responses, labels, categories, versus="others"):
    """d′ of every unit for every category: ``{name: (n_units,)}``.

    With ``versus`` a list of names, a category that is the only name in the list has
    no contrast set and is left out.
    """
    return {
        name: dprime(responses, *contrast_masks(labels, categories, name, versus))
        for name in contrasted_categories(categories, versus)
    }


def contrasted_categories(categories, versus="others"):
    """The categories that have a non-empty contrast set under ``versus``, in order."""
    pool = set(_versus_names(categories, versus))
    return [name for name in categories if pool - {name}]


def fraction_selective(dprime_values, threshold=defaults.DPRIME_THRESHOLD):
    """Fraction of units whose d′ passes ``threshold``.

    A non-negative threshold counts ``d′ > threshold`` (e.g. face-selective); a negative
    one counts ``d′ < threshold`` (e.g. object-selective at −0.85). NaN units are left
    out of both counts; with no finite value the fraction is NaN.
    """
    d = np.asarray(dprime_values, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    passed = d > threshold if threshold >= 0 else d < threshold
    return float(np.mean(passed))


@dataclass(frozen=True)
class Calibration:
    """Model d′ threshold equivalent to a neural one: ``d′_noisy = slope·d′_clean + intercept``."""

    threshold: float
    slope: float
    intercept: float


def calibrate_threshold(
    responses,
    labels,
    categories,
    category="faces",
    *,
    versus="others",
    neural_threshold=defaults.NEURAL_DPRIME_THRESHOLD,
    gain=1.0,
    seed=0,
):
    """Translate a neural d′ threshold into model space with simulated Poisson noise.

    Following Lee et al. 2020, every response (one image = one trial) is replaced by
    an independent Poisson count with mean ``gain · response``; d′ is computed on the
    clean and on the noisy responses, the line ``d′_noisy = a·d′_clean + b`` is fitted by
    least squares over units, and the model threshold is where the line reaches the
    neural threshold: ``(neural_threshold − b) / a``. Units whose clean responses have
    zero pooled variance (silent units) are left out of the fit.

    Parameters
    ----------
    responses : (n_images, n_units) array of non-negative values
        Rectified model responses (spike-count-like rates).
    labels, categories, category, versus
        The contrast, as in :func:`contrast_masks`.
    neural_threshold : float
        The neural d′ criterion (0.65 for the macaque middle face patches).
    gain : float
        Counts per unit of response: larger gain means relatively less noise.
    seed : int
        Seed of the Poisson noise.

    Returns
    -------
    Calibration
    """
    r = np.asarray(responses, dtype=np.float64)
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise TopoviewerError("Poisson calibration needs finite non-negative (rectified) responses")
    if not gain > 0:
        raise TopoviewerError(f"gain must be positive, got {gain}")
    in_mask, contrast_mask = contrast_masks(labels, categories, category, versus)
    noisy = np.random.default_rng(seed).poisson(gain * r).astype(np.float64)
    clean_d = dprime(r, in_mask, contrast_mask)
    noisy_d = dprime(noisy, in_mask, contrast_mask)
    xc, xo = _groups(r, in_mask, contrast_mask)
    active = (xc.var(axis=0, ddof=1) + xo.var(axis=0, ddof=1)) > 0
    if active.sum() < 2 or np.ptp(clean_d[active]) == 0:
        raise TopoviewerError("too few units with varying responses to fit the noise calibration")
    slope, intercept = np.polyfit(clean_d[active], noisy_d[active], 1)
    if not slope > 0:
        raise TopoviewerError(f"noise calibration slope is {slope:.3g}; cannot invert it")
    return Calibration(float((neural_threshold - intercept) / slope), float(slope), float(intercept))


def _versus_names(categories, versus):
    """The candidate contrast category names: all of them for ``"others"``."""
    if isinstance(versus, str):
        return list(categories) if versus == "others" else [versus]
    return list(versus)


def _category_index(categories, name):
    try:
        return list(categories).index(name)
    except ValueError:
        raise TopoviewerError(
            f"unknown category {name!r}; known categories: {', '.join(map(str, categories))}"
        ) from None


def _groups(values, in_mask, contrast_mask):
    """The in and contrast rows of ``values`` as float64, each with at least 2 images."""
    values = np.asarray(values, dtype=np.float64)
    in_mask, contrast_mask = np.asarray(in_mask, bool), np.asarray(contrast_mask, bool)
    if in_mask.shape != values.shape[:1] or contrast_mask.shape != values.shape[:1]:
        raise TopoviewerError(
            f"masks of shape {in_mask.shape} / {contrast_mask.shape} do not match {values.shape[0]} images"
        )
    if in_mask.sum() < 2 or contrast_mask.sum() < 2:
        raise TopoviewerError(
            f"selectivity needs at least 2 images per side, got {in_mask.sum()} and {contrast_mask.sum()}"
        )
    return values[in_mask], values[contrast_mask]


def _safe_ratio(num, den):
    """``num / den`` with 0 where ``den`` is 0 (and NaN wherever an input is NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return np.where(den == 0, 0.0, out)
