"""Early visual maps (docs/science.md, "Early visual maps"): grating tuning per unit, then the
orientation preference map, its pinwheels, and how preferences vary across the sheet.

Per unit (:func:`grating_tuning`), from responses to the gratings of
:func:`topoviewer.stimuli.gratings`: responses are averaged over phases; the preferred spatial
frequency is the peak of the achromatic SF tuning curve (mean over orientations); the preferred
orientation and the orientation selectivity come from the vector average of the achromatic
orientation tuning curve at that SF on the doubled-angle circle (:func:`circular_tuning`), and
hue preference and colour selectivity from the same average over the chromatic gratings' hues.

On the sheet: the smoothed complex map ``z(x) = Σ_i g(x − p_i) r_i exp(2iθ_i) / Σ_i g(x − p_i)``
(:func:`orientation_map`), pinwheels where the phase of ``z`` winds around a grid plaquette
(:func:`find_pinwheels`), the column spacing Λ from its power spectrum (:func:`column_spacing`) and
pinwheels per Λ² (:func:`pinwheel_density`); pairwise preference difference vs cortical distance,
neighbour agreement and the cardinal bias work on any unit layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import TopoviewerError
from ..sheet import Grid
from ..validate import MAX_VOXELS
from .structure import binned_means, pair_distances

__all__ = [
    "GratingTuning", "OrientationMap", "Pinwheels", "cardinal_bias", "circular_tuning", "column_spacing",
    "find_pinwheels", "grating_tuning", "orientation_agreement", "orientation_map", "pinwheel_density",
    "preference_difference_by_distance",
]


def circular_tuning(curve, angles_deg, period_deg=180.0):
    """Preferred angle and selectivity of tuning curves by the vector average.

    With the curve's minimum subtracted, ``r_k = R(a_k) − min_k R``, the vector average is
    ``z = Σ_k r_k exp(2πi a_k / P) / Σ_k r_k`` for the period ``P`` (180° for orientation: the
    doubled angle; 360° for hue). The preferred angle is ``arg(z) · P / 2π`` in [0, P) and the
    selectivity ``|z| = 1 − circular variance`` (0: flat, 1: one angle only).

    Parameters
    ----------
    curve : (..., K) array
        Responses at the K angles (last axis).
    angles_deg : (K,) array
    period_deg : float

    Returns
    -------
    preferred_deg, selectivity : (...) arrays
        A flat curve has no preference: NaN and selectivity 0.
    """
    r = np.asarray(curve, np.float64)
    a = np.asarray(angles_deg, np.float64)
    if r.shape[-1:] != a.shape:
        raise TopoviewerError(f"a tuning curve needs one value per angle ({a.size}), got shape {r.shape}")
    r = r - r.min(axis=-1, keepdims=True)
    total = r.sum(axis=-1)
    z = r @ np.exp(2j * np.pi * a / period_deg)
    live = total > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        preferred = np.where(live, np.mod(np.angle(z) * period_deg / (2 * np.pi), period_deg), np.nan)
        selectivity = np.where(live, np.abs(z) / np.where(live, total, 1.0), 0.0)
    return preferred, selectivity


@dataclass(frozen=True)
class GratingTuning:
    """Every unit's grating preferences (see :func:`grating_tuning`).

    Attributes
    ----------
    orientation_deg : (N,) preferred orientation in [0°, 180°) (NaN: no preference).
    osi : (N,) orientation selectivity, 1 − circular variance.
    sf_cpi : (N,) preferred spatial frequency, cycles per image.
    hue_deg : (N,) preferred hue in [0°, 360°), or None without chromatic gratings.
    colour_selectivity : (N,) 1 − circular variance over hues, or None.
    orientations_deg : (K,) the orientations of the gratings.
    orientation_curve : (N, K) mean response per orientation at the preferred SF (achromatic).
    """

    orientation_deg: np.ndarray
    osi: np.ndarray
    sf_cpi: np.ndarray
    hue_deg: np.ndarray | None
    colour_selectivity: np.ndarray | None
    orientations_deg: np.ndarray
    orientation_curve: np.ndarray


def _condition_means(responses, keys, mask):
    """Mean response per distinct row of ``keys`` (n_images, F) among the images in ``mask``: the sorted
    levels and their (levels, N) means, as one averaging-matrix product (no copy of the responses)."""
    levels, inverse = np.unique(keys[mask], axis=0, return_inverse=True)
    member = np.zeros((len(levels), len(keys)), responses.dtype)
    member[inverse.ravel(), np.flatnonzero(mask)] = 1.0
    return levels, (member / member.sum(axis=1, keepdims=True)) @ responses


def grating_tuning(responses, orientation_deg, sf_cpi, colour, hue_deg=()) -> GratingTuning:
    """Preferred orientation, orientation selectivity, preferred SF and hue of every unit.

    Parameters
    ----------
    responses : (n_images, N) array
        Responses to gratings (any number of phases per condition; they are averaged).
    orientation_deg, sf_cpi : (n_images,) arrays
        Each image's orientation and spatial frequency.
    colour : (n_images,) int array
        0 for achromatic gratings, ``k ≥ 1`` for the hue ``hue_deg[k − 1]``.
    hue_deg : sequence of float
        Hue of each chromatic colour; empty: no colour tuning (None fields).

    Returns
    -------
    GratingTuning
        The preferred SF maximises the mean achromatic response over orientations and phases;
        orientation is the vector average (:func:`circular_tuning`, period 180°) of the
        achromatic orientation curve at that SF; hue the vector average (period 360°) of the
        mean response per hue over every chromatic grating.
    """
    r = np.asarray(responses)
    r = r if r.dtype in (np.float32, np.float64) else r.astype(np.float64)
    ori, sf, colour = (np.asarray(v) for v in (orientation_deg, sf_cpi, colour))
    if r.ndim != 2 or not (ori.shape == sf.shape == colour.shape == (r.shape[0],)):
        raise TopoviewerError(
            f"expected responses (images, units) and one orientation, SF and colour per image; got {r.shape}")
    grey = colour == 0
    if not grey.any():
        raise TopoviewerError("orientation and SF tuning need achromatic gratings (colour 0)")
    sfs, oris = np.unique(sf[grey]), np.unique(ori[grey])
    levels, means = _condition_means(r, np.column_stack([sf, ori]), grey)
    if len(levels) != len(sfs) * len(oris):
        raise TopoviewerError("the achromatic gratings must cross every orientation with every spatial frequency")
    table = means.reshape(len(sfs), len(oris), -1)  # np.unique sorts by SF, then orientation
    best_sf = np.argmax(table.mean(axis=1), axis=0)
    curve = np.take_along_axis(table, best_sf[None, None, :], axis=0)[0].T  # (N, K)
    preferred, osi = circular_tuning(curve, oris, 180.0)
    hue = selectivity = None
    hue_deg = np.asarray(hue_deg, np.float64)
    if hue_deg.size:
        chroma = colour > 0
        if set(np.unique(colour[chroma])) != set(range(1, hue_deg.size + 1)):
            raise TopoviewerError(f"expected gratings of all {hue_deg.size} hues")
        _, per_hue = _condition_means(r, colour[:, None], chroma)
        hue, selectivity = circular_tuning(per_hue.T, hue_deg, 360.0)
    return GratingTuning(preferred, osi, sfs[best_sf], hue, selectivity, oris, curve)


# --------------------------------------------------------------------------- the map on the sheet

@dataclass(frozen=True)
class OrientationMap:
    """The smoothed complex orientation map on a pixel grid over a sheet.

    Attributes
    ----------
    z : (rows, cols) complex array
        ``Σ g r exp(2iθ) / Σ g`` per pixel (NaN where no unit is near).
    grid : Grid
    fwhm_mm : float
        The smoothing.
    """

    z: np.ndarray
    grid: Grid
    fwhm_mm: float

    @property
    def orientation_deg(self) -> np.ndarray:
        """Preferred orientation per pixel, [0°, 180°): ``arg(z) / 2``."""
        return np.mod(np.degrees(np.angle(self.z)) / 2.0, 180.0)

    @property
    def strength(self) -> np.ndarray:
        """``|z|``: how strongly and consistently the pixel's units are tuned."""
        return np.abs(self.z)


def map_pixel_mm(sheet, max_pixels=MAX_VOXELS) -> float:
    """One mean unit spacing, ``√(area / N)``, or coarser so the grid has at most ``max_pixels``
    (the simulated-fMRI grid's limit, :data:`topoviewer.validate.MAX_VOXELS`)."""
    area = sheet.extent_mm[0] * sheet.extent_mm[1]
    return max(math.sqrt(area / sheet.n_units), math.sqrt(area / max_pixels))


def orientation_map(sheet, orientation_deg, weight=None, fwhm_mm=None, pixel_mm=None) -> OrientationMap:
    """Smooth the units' orientation preferences into a complex map.

    Parameters
    ----------
    sheet : Sheet
    orientation_deg : (N,) array
        Preferred orientations (NaN: left out).
    weight : (N,) array, optional
        Per-unit length ``r`` of the vector (default: 1; the OSI gives a selectivity-weighted map).
    fwhm_mm : float, optional
        Gaussian smoothing (default: 2 pixels).
    pixel_mm : float, optional
        Grid pixel (default :func:`map_pixel_mm`: the mean unit spacing).

    Returns
    -------
    OrientationMap
        ``z = Σ_i g(x − p_i) r_i exp(2iθ_i) / Σ_i g(x − p_i)`` at the pixel centres
        (:meth:`Sheet.voxelise`: the same Gaussian weights and NaN mask as the fMRI voxels).
    """
    theta = np.radians(np.asarray(orientation_deg, np.float64))
    r = np.ones_like(theta) if weight is None else np.asarray(weight, np.float64)
    if theta.shape != (sheet.n_units,) or r.shape != theta.shape:
        raise TopoviewerError(f"expected {sheet.n_units} orientations and weights, got {theta.shape} and {r.shape}")
    pixel_mm = map_pixel_mm(sheet) if pixel_mm is None else float(pixel_mm)
    fwhm_mm = 2.0 * pixel_mm if fwhm_mm is None else float(fwhm_mm)
    vec = np.where(np.isfinite(theta) & np.isfinite(r), r * np.exp(2j * np.nan_to_num(theta)), 0.0)
    parts = sheet.voxelise(np.stack([vec.real, vec.imag]), fwhm_mm=fwhm_mm, voxel_mm=pixel_mm)
    return OrientationMap(parts[0].astype(np.float64) + 1j * parts[1], sheet.grid(pixel_mm), fwhm_mm)


@dataclass(frozen=True)
class Pinwheels:
    """Pinwheels of an orientation map.

    Attributes
    ----------
    positions_mm : (k, 2) array of (x, y)
        Centres of the grid plaquettes around which the orientation winds.
    charge : (k,) array
        +0.5 where the orientation turns by +180° going counter-clockwise (x right, y up), −0.5
        where it turns the other way.
    area_mm2 : float
        Area of the plaquettes where the map is defined (every corner finite).
    """

    positions_mm: np.ndarray
    charge: np.ndarray
    area_mm2: float

    def to_array(self) -> np.ndarray:
        """(k, 3) array of x, y, charge (what the .npz stores)."""
        return np.column_stack([self.positions_mm, self.charge]) if len(self.charge) else np.zeros((0, 3))


def _wrap(phase):
    return np.mod(phase + np.pi, 2 * np.pi) - np.pi


def find_pinwheels(omap: OrientationMap) -> Pinwheels:
    """Pinwheels by the winding number of ``arg z`` around every 2 × 2 plaquette of pixel centres.

    Going counter-clockwise around the plaquette (x right, y up), the wrapped phase steps of
    ``arg z = 2θ`` sum to ``2π · w``; ``w = ±1`` marks a pinwheel (orientation charge ``w / 2``)
    at the plaquette's centre. Plaquettes with a NaN corner are skipped.
    """
    phase = np.angle(omap.z)
    a, b, c, d = phase[:-1, :-1], phase[:-1, 1:], phase[1:, 1:], phase[1:, :-1]  # (x, y): 00, 10, 11, 01
    winding = np.rint((_wrap(b - a) + _wrap(c - b) + _wrap(d - c) + _wrap(a - d)) / (2 * np.pi))
    finite = np.isfinite(omap.z)
    defined = finite[:-1, :-1] & finite[:-1, 1:] & finite[1:, 1:] & finite[1:, :-1]
    winding = np.where(defined, winding, 0)
    rows, cols = np.nonzero(winding)
    p, (x0, y0) = omap.grid.pixel_mm, omap.grid.origin_mm
    positions = np.column_stack([x0 + (cols + 1.0) * p, y0 + (rows + 1.0) * p])
    return Pinwheels(positions, winding[rows, cols] / 2.0, float(defined.sum() * p * p))


def column_spacing(omap: OrientationMap, pad: int = 4) -> float:
    """Column spacing Λ (mm): one over the peak of the map's radially averaged power spectrum.

    ``z`` (NaN → 0, mean removed) is zero-padded ``pad``-fold, its power spectrum averaged in
    rings of one padded frequency step, and the ring of highest power (the DC ring excluded)
    gives the dominant wavenumber ``k`` in cycles/mm; ``Λ = 1 / k``. A map whose spectrum peaks at
    wavelengths longer than half its shorter side (e.g. smoothed salt-and-pepper noise, whose power
    only falls with frequency) has no column spacing: TopoviewerError.
    """
    z = np.where(np.isfinite(omap.z), omap.z, 0)
    z = np.where(np.isfinite(omap.z), z - z[np.isfinite(omap.z)].mean(), 0)
    rows, cols = z.shape
    n = pad * max(rows, cols)
    power = np.abs(np.fft.fft2(z, s=(n, n))) ** 2
    k = np.fft.fftfreq(n, d=omap.grid.pixel_mm)
    radius = np.hypot(*np.meshgrid(k, k))
    step = 1.0 / (n * omap.grid.pixel_mm)
    ring = np.rint(radius / step).astype(int)
    mean = np.bincount(ring.ravel(), weights=power.ravel()) / np.maximum(np.bincount(ring.ravel()), 1)
    mean[0] = -np.inf
    peak = int(np.argmax(mean))
    if not np.isfinite(mean[peak]) or mean[peak] <= 0:
        raise TopoviewerError("the orientation map is flat: it has no column spacing")
    spacing = 1.0 / (peak * step)
    half = min(rows, cols) * omap.grid.pixel_mm / 2.0
    if spacing > half:
        raise TopoviewerError(f"the orientation map is not periodic: its spectrum peaks at a wavelength of "
                              f"{spacing:.3g} mm, more than half the map ({half:.3g} mm)")
    return float(spacing)


def pinwheel_density(pinwheels: Pinwheels, spacing_mm: float) -> float:
    """Pinwheels per column spacing squared: ``n · Λ² / area`` (≈ π in cat, ferret, tree shrew and
    galago V1, Kaschube et al. 2010)."""
    if not pinwheels.area_mm2 > 0:
        return float("nan")
    return float(len(pinwheels.charge) * spacing_mm**2 / pinwheels.area_mm2)


# --------------------------------------------------------------------------- unit-level structure

def _orientation_difference(a_deg, b_deg):
    """|a − b| on the 180° circle, in [0°, 90°]."""
    d = np.mod(np.asarray(a_deg) - np.asarray(b_deg), 180.0)
    return np.minimum(d, 180.0 - d)


def preference_difference_by_distance(sheet, orientation_deg, bin_mm=None, max_distance_mm=None,
                                      max_units=1024, seed=0):
    """Mean orientation-preference difference of unit pairs by cortical distance.

    Parameters
    ----------
    sheet : Sheet
    orientation_deg : (N,) array (NaN units left out)
    bin_mm : float, optional
        Bin width (default: 1 mean unit spacing).
    max_distance_mm : float, optional
        Last bin edge (default: half the sheet's shorter side).
    max_units, seed
        Larger sheets use a random subset of this many units.

    Returns
    -------
    distance_mm, difference_deg, n_pairs : (K,) arrays
        Bin centres, mean |Δθ| in [0°, 90°] (45° for unrelated preferences; NaN for an empty bin).
    """
    theta = np.asarray(orientation_deg, np.float64)
    if theta.shape != (sheet.n_units,):
        raise TopoviewerError(f"expected {sheet.n_units} orientations, got shape {theta.shape}")
    keep = np.flatnonzero(np.isfinite(theta))
    if len(keep) > max_units:
        keep = np.sort(np.random.default_rng(seed).choice(keep, max_units, replace=False))
    bin_mm = map_pixel_mm(sheet) if bin_mm is None else float(bin_mm)
    top = min(sheet.extent_mm) / 2.0 if max_distance_mm is None else float(max_distance_mm)
    i, j, d = pair_distances(sheet.positions[keep])
    edges = np.arange(0.0, top + bin_mm / 2, bin_mm)
    mean, n = binned_means(d, _orientation_difference(theta[keep][i], theta[keep][j]), edges)
    return (edges[:-1] + edges[1:]) / 2, mean, n


def orientation_agreement(sheet, orientation_deg, radius_mm=None) -> float:
    """Neighbour agreement of orientation preferences: mean ``cos 2(θ_i − θ_j)`` over pairs closer
    than ``radius_mm`` (default 1.5 mean unit spacings). 1: neighbours share a preference; about 0
    for a salt-and-pepper map; NaN without pairs."""
    theta = np.radians(np.asarray(orientation_deg, np.float64))
    if theta.shape != (sheet.n_units,):
        raise TopoviewerError(f"expected {sheet.n_units} orientations, got shape {theta.shape}")
    radius_mm = 1.5 * map_pixel_mm(sheet) if radius_mm is None else float(radius_mm)
    pairs = sheet.kdtree().query_pairs(radius_mm, output_type="ndarray")
    c = np.cos(2.0 * (theta[pairs[:, 0]] - theta[pairs[:, 1]])) if len(pairs) else np.zeros(0)
    c = c[np.isfinite(c)]
    return float(c.mean()) if len(c) else float("nan")


def cardinal_bias(orientation_deg, half_width_deg=11.25) -> dict:
    """How many preferences lie near the cardinals (0°, 90°) vs the obliques (45°, 135°).

    A unit is cardinal within ``half_width_deg`` of 0° or 90°, oblique within it of 45° or 135°
    (the default makes four 22.5° bins: a uniform distribution puts 1/4 in each class).

    Returns
    -------
    dict
        ``fraction_cardinal``, ``fraction_oblique`` (of units with a preference) and
        ``bias = (n_cardinal − n_oblique) / (n_cardinal + n_oblique)`` (NaN if neither).
    """
    theta = np.asarray(orientation_deg, np.float64)
    theta = theta[np.isfinite(theta)]
    to_cardinal = np.minimum(_orientation_difference(theta, 0.0), _orientation_difference(theta, 90.0))
    cardinal = np.count_nonzero(to_cardinal <= half_width_deg)
    oblique = np.count_nonzero(to_cardinal >= 45.0 - half_width_deg)
    n = max(len(theta), 1)
    both = cardinal + oblique
    return {"fraction_cardinal": cardinal / n, "fraction_oblique": oblique / n,
            "bias": (cardinal - oblique) / both if both else float("nan")}
