"""Full-field sine gratings for early visual maps: orientation × spatial frequency × phase × colour.

Every image is computed from its four factors, so the set is identical everywhere and needs no
seed. The luminance of pixel (row, col) of an ``S × S`` image is

    L = 0.5 · (1 + c · cos(2π f u + φ)),   u = −x sin θ + y cos θ,

with x = (col − (S − 1)/2) / S rightwards and y = ((S − 1)/2 − row) / S upwards (image widths),
f the spatial frequency in cycles per image, φ the phase and c = 1 the Michelson contrast.
The **orientation** θ is the direction of the bars, counter-clockwise from horizontal: θ = 0°
gives horizontal bars (luminance varies along y), θ = 90° vertical bars. A coloured grating is
the same luminance profile times the hue's RGB (full saturation and value), ``L · rgb(hue)``:
bright bars of that hue on black. The achromatic grating has ``rgb = (1, 1, 1)``.
"""

from __future__ import annotations

import colorsys

import numpy as np

from topoviewer.errors import TopoviewerError
from topoviewer.stimuli._draw import check_count, check_size
from topoviewer.stimuli.files import StimulusSet

__all__ = ["GRATING_HUES", "GratingSet", "gratings"]

#: Hues of the chromatic gratings (HSV hue, degrees; evenly spaced so that vector averages are fair).
GRATING_HUES = {"red": 0.0, "chartreuse": 90.0, "cyan": 180.0, "violet": 270.0}


class GratingSet(StimulusSet):
    """A :class:`StimulusSet` of gratings, with every image's factors.

    The labels (categories) are the orientations, e.g. ``"22.5°"``; the factors of image ``i``
    are ``orientation_deg[i]``, ``sf_cpi[i]``, ``phase_deg[i]`` and ``colour[i]`` (an index into
    ``colours``; ``colours[0]`` is ``"achromatic"``).

    Attributes
    ----------
    orientation_deg, sf_cpi, phase_deg : (n,) float arrays
    colour : (n,) int array
    colours : list of str
        ``"achromatic"`` then the hue names.
    hue_deg : (len(colours) - 1,) float array
        HSV hue of each chromatic colour, degrees.
    fov_deg : float or None
        Width of the image in degrees of visual angle, when known (gives cycles/degree).
    """

    def __init__(self, images, labels, categories, name, *, orientation_deg, sf_cpi, phase_deg, colour,
                 colours, hue_deg, fov_deg=None):
        super().__init__(images, labels, categories, name)
        self.orientation_deg = np.asarray(orientation_deg, np.float64)
        self.sf_cpi = np.asarray(sf_cpi, np.float64)
        self.phase_deg = np.asarray(phase_deg, np.float64)
        self.colour = np.asarray(colour, np.int64)
        self.colours = list(colours)
        self.hue_deg = np.asarray(hue_deg, np.float64)
        self.fov_deg = None if fov_deg is None else float(fov_deg)

    @property
    def sf_cpd(self):
        """Spatial frequency of every image in cycles per degree (None without ``fov_deg``)."""
        return None if self.fov_deg is None else self.sf_cpi / self.fov_deg

    def factors(self) -> dict:
        """The factor levels, JSON-ready (what ``summary.json`` records)."""
        out = {
            "orientation_deg": np.unique(self.orientation_deg).tolist(),
            "sf_cycles_per_image": np.unique(self.sf_cpi).tolist(),
            "phase_deg": np.unique(self.phase_deg).tolist(),
            "colours": list(self.colours),
            "hue_deg": self.hue_deg.tolist(),
        }
        if self.fov_deg is not None:
            out["fov_deg"] = self.fov_deg
            out["sf_cycles_per_degree"] = (np.unique(self.sf_cpi) / self.fov_deg).tolist()
        return out


def gratings(size: int = 32, orientations: int = 8, sf_cpi=None, phases: int = 4, hues=tuple(GRATING_HUES),
             fov_deg: float | None = None, max_bytes: int = 1_000_000_000) -> GratingSet:
    """Generate the grating set: every combination of the factors.

    Parameters
    ----------
    size : int
        Edge of the square images in pixels (16 to 1024): the model's input size.
    orientations : int
        Orientations, evenly spaced in [0°, 180°) (≥ 2).
    sf_cpi : sequence of float, optional
        Spatial frequencies in cycles per image, each in (0, size / 2). Default: 6 frequencies
        evenly spaced in log from 1 to ``size / 4`` cycles per image (2 px per half cycle at the top).
    phases : int
        Phases, evenly spaced in [0°, 360°) (≥ 1).
    hues : sequence of str
        Chromatic colours, names in :data:`GRATING_HUES`; ``()`` gives an achromatic set
        (grey images, for 1-channel models, where hue reaches the network only as luminance).
    fov_deg : float, optional
        Width of the image in degrees of visual angle; the set then also knows cycles/degree.
    max_bytes : int
        Refuse to generate more image data than this (bytes of float32).

    Returns
    -------
    GratingSet
        ``orientations · len(sf) · phases · (1 + len(hues))`` images, float32 in [0, 1]:
        (n, size, size) grey when ``hues`` is empty, else (n, size, size, 3) RGB. Ordered by
        colour, then spatial frequency, then orientation, then phase; labelled by orientation.
    """
    size = check_size(size)
    n_ori, n_phase = check_count(orientations, "orientations"), check_count(phases, "phases")
    if n_ori < 2:
        raise TopoviewerError(f"gratings need at least 2 orientations, got {n_ori}")
    if sf_cpi is None:
        sf = np.geomspace(1.0, size / 4.0, 6)
    else:
        sf = np.atleast_1d(np.asarray(sf_cpi, np.float64))
        if sf.ndim != 1 or sf.size == 0 or not np.all((sf > 0) & (sf < size / 2)):
            raise TopoviewerError(
                f"spatial frequencies must be cycles per image in (0, {size / 2:g}) for {size} px, got {sf.tolist()}")
    hues = tuple(hues)
    unknown = [h for h in hues if h not in GRATING_HUES]
    if unknown or len(set(hues)) != len(hues):
        raise TopoviewerError(f"grating hues must be distinct names among {', '.join(GRATING_HUES)}, got {list(hues)}")
    if fov_deg is not None and not (np.isfinite(fov_deg) and fov_deg > 0):
        raise TopoviewerError(f"field of view must be a positive number of degrees, got {fov_deg}")
    colours = ["achromatic", *hues]
    rgb = np.array([(1.0, 1.0, 1.0)] + [colorsys.hsv_to_rgb(GRATING_HUES[h] / 360.0, 1.0, 1.0) for h in hues])
    channels = 3 if hues else 1
    n = len(colours) * len(sf) * n_ori * n_phase
    if n * size * size * channels * 4 > max_bytes:
        raise TopoviewerError(
            f"{n} gratings of {size} × {size} × {channels} would take {n * size * size * channels * 4 / 1e9:.1f} GB "
            f"(limit {max_bytes / 1e9:.1f} GB); use fewer factors or a smaller size")

    theta = np.arange(n_ori) * 180.0 / n_ori
    phi = np.arange(n_phase) * 360.0 / n_phase
    col, f, o, p = (a.ravel() for a in np.meshgrid(np.arange(len(colours)), sf, theta, phi, indexing="ij"))
    c = (np.arange(size) - (size - 1) / 2.0) / size
    x, y = c[None, :], -c[:, None]
    luminance = np.empty((n, size, size), np.float32)
    for i in range(n):
        t = np.radians(o[i])
        u = -x * np.sin(t) + y * np.cos(t)
        luminance[i] = 0.5 * (1.0 + np.cos(2.0 * np.pi * f[i] * u + np.radians(p[i])))
    images = luminance if not hues else luminance[..., None] * rgb[col][:, None, None, :].astype(np.float32)
    labels = np.searchsorted(theta, o)
    name = f"gratings(size={size},orientations={n_ori},sf={'+'.join(f'{v:.3g}' for v in sf)},phases={n_phase}"
    name += f",hues={'+'.join(hues) or 'none'}" + (f",fov={fov_deg:g}deg" if fov_deg is not None else "") + ")"
    return GratingSet(
        np.clip(images, 0.0, 1.0), labels, [f"{v:g}°" for v in theta], name,
        orientation_deg=o, sf_cpi=f, phase_deg=p, colour=col, colours=colours,
        hue_deg=[GRATING_HUES[h] for h in hues], fov_deg=fov_deg,
    )
