"""How every map kind is drawn: one colormap and one rule for its limits, shared by the napari
layers and the matplotlib figures, so an exported figure looks like the screen.

Signed maps (d′, voxel t, contrasts) use a diverging colormap with limits symmetric about 0;
purity is a fraction in [0, 1]; activations and stimulation are non-negative. Preferred orientation
(0–180°) and hue (0–360°) use the cyclic HSV colormap, so that 0° and 180° (or 360°) look alike.
"""

from __future__ import annotations

import numpy as np

from . import defaults

__all__ = ["CMAP", "DPRIME_PERCENTILE", "map_limits", "symmetric_limit"]

#: Colormap per map kind.
CMAP = {
    "dprime": "RdBu_r",
    "voxel_t": "RdBu_r",
    "purity": "magma",
    "activation": "inferno",
    "contrast": "RdBu_r",
    "stimulation": "inferno",
    "propagated": "inferno",
    "orientation": "hsv",
    "osi": "viridis",
    "sf": "cividis",
    "colour": "hsv",
}

#: d′ maps saturate at this percentile of |d′| so that a few extreme units do not wash out the map.
DPRIME_PERCENTILE = 99.0


def symmetric_limit(values, floor: float = 1.0, percentile: float = 100.0) -> float:
    """A high percentile of |finite values| (default: the largest), at least ``floor`` (limits ±this)."""
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    top = float(np.percentile(v, percentile)) if v.size else 0.0
    return max(top, floor)


def map_limits(kind, values, *, threshold=None):
    """``(low, high)`` colour limits of a map of ``kind`` (a key of :data:`CMAP`).

    d′ and contrasts: ± the 99th percentile of |values|, at least 1.5 × the d′ threshold;
    voxel t: ± the largest |t|, at least 1.2 × the t threshold; purity and OSI: (0, 1); orientation
    (0, 180); colour (hue) (0, 360); activation and SF: (min(0, smallest), largest); stimulation and
    propagated activity: (0, largest).
    """
    if kind in ("dprime", "contrast"):
        thr = defaults.DPRIME_THRESHOLD if threshold is None else threshold
        lim = symmetric_limit(values, floor=1.5 * thr, percentile=DPRIME_PERCENTILE)
        return -lim, lim
    if kind == "voxel_t":
        thr = defaults.VOXEL_T_THRESHOLD if threshold is None else threshold
        lim = symmetric_limit(values, floor=1.2 * thr)
        return -lim, lim
    if kind in ("purity", "osi"):
        return 0.0, 1.0
    if kind == "orientation":
        return 0.0, 180.0
    if kind == "colour":
        return 0.0, 360.0
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if kind in ("stimulation", "propagated"):
        return 0.0, max(float(v.max()) if v.size else 0.0, 1e-6)
    if kind in ("activation", "sf"):
        hi = float(v.max()) if v.size else 1.0
        lo = min(0.0, float(v.min())) if v.size else 0.0
        return lo, hi if hi > lo else lo + 1.0
    raise KeyError(f"unknown map kind {kind!r}; expected one of {', '.join(CMAP)}")
