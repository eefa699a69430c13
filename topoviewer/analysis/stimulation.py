"""Simulated microstimulation with propagation, and lesions (docs/science.md; methods §6).

Microstimulation clamps one sheet: units inside a disc around the site are set to
their maximum activation (over held-out images) times a Gaussian spatial decay,
every other unit is silenced, and the model runs forward from that sheet. A lesion
is the mirror image: silence a disc or a random fraction of units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import defaults
from ..errors import TopoviewerError
from .fmri import _cell_indices
from .patches import disc_centres

#: Decay profiles of :func:`stimulation_pattern`.
DECAYS = ("peak1", "normal_density")
#: Rules of :func:`outside_site`.
OUTSIDE_RULES = ("paper", "strict")

__all__ = [
    "Stimulation",
    "disc_is_clipped",
    "inside_site",
    "lesion_disc",
    "lesion_random",
    "microstimulate",
    "in_patch",
    "outside_site",
    "stimulation_pattern",
]


def stimulation_pattern(
    sheet,
    center_mm,
    max_activation,
    radius_mm=defaults.STIM_RADIUS_MM,
    sigma_mm=defaults.STIM_SIGMA_MM,
    decay=defaults.STIM_DECAY,
):
    """Clamped activity of a stimulated sheet: (n_units,) float64.

    A unit at distance ``d ≤ radius_mm`` from the site gets ``max_activation · g(d)``;
    every other unit is 0. The paper's decay "sampled from the standard normal
    distribution" is read two ways (``decay``): ``"peak1"`` g(d) = exp(−d² / 2σ²) (the
    site's centre is driven at its maximum) or ``"normal_density"`` g(d) =
    exp(−d² / 2σ²) / (σ·sqrt(2π)) (0.399 at the centre for σ = 1 mm).

    Parameters
    ----------
    sheet : Sheet
    center_mm : (x, y)
        Stimulation site.
    max_activation : (n_units,) array
        Each unit's maximum activation over the images not used to find the patches.
    radius_mm : float
        Radius of the stimulated disc (default 2 mm: the paper's 4 mm region as a diameter).
    sigma_mm : float
        σ of the Gaussian decay with distance from the site.
    decay : {"peak1", "normal_density"}
        Scale of the decay profile (see above).
    """
    max_activation = np.asarray(max_activation, dtype=np.float64)
    if max_activation.shape != (sheet.n_units,):
        raise TopoviewerError(
            f"sheet {sheet.name!r} has {sheet.n_units} units; got max activations of shape {max_activation.shape}"
        )
    if not sigma_mm > 0:
        raise TopoviewerError(f"stimulation σ must be positive, got {sigma_mm} mm")
    if decay not in DECAYS:
        raise TopoviewerError(f"stimulation decay must be one of {', '.join(DECAYS)}, got {decay!r}")
    d = sheet.distances_to(center_mm)
    g = np.exp(-(d**2) / (2.0 * sigma_mm**2))
    if decay == "normal_density":
        g = g / (sigma_mm * np.sqrt(2.0 * np.pi))
    return np.where(d <= radius_mm, max_activation * g, 0.0)


def outside_site(
    sheet,
    patch,
    radius_mm=defaults.STIM_RADIUS_MM,
    rng=None,
    *,
    rule=defaults.STIM_OUTSIDE_RULE,
    voxel_mm=defaults.VOXEL_MM,
    step_mm=None,
):
    """A random stimulation site outside every patch.

    Candidate centres form a grid (spacing at most ``step_mm``, default ``radius_mm / 10``)
    over the positions whose disc lies inside the sheet (an unclipped disc, like the
    inside site's, so inside and outside stimulate comparable numbers of units). The
    ``rule`` decides which candidates count as outside:

    - ``"paper"`` (Lee et al. 2020): only the centre must be outside every patch: it does
      not fall in a patch voxel (voxel mask) or its nearest unit is not a patch unit (unit
      mask). The disc may overlap a patch.
    - ``"strict"``: no patch point (voxel centre or unit) lies within ``radius_mm``.

    One valid candidate is drawn uniformly.

    Parameters
    ----------
    sheet : Sheet
    patch : (n_units,) or (rows, cols) bool array
        The identified patches, either as units (patch points = their positions; e.g.
        the union of :func:`~topoviewer.analysis.patches.patch_units` masks) or as a
        mask on the ``voxel_mm`` voxel grid (patch points = the voxel centres; e.g.
        ``find_patches(t_map, min_voxels=1)[0] > 0``).
    radius_mm : float
        Stimulation disc radius.
    rng : numpy Generator or int seed, optional
    rule : {"paper", "strict"}
    voxel_mm : float
        Voxel edge of a (rows, cols) patch mask.

    Returns
    -------
    (x, y) : tuple of float

    Raises
    ------
    TopoviewerError
        If no such site exists.
    """
    from scipy.spatial import cKDTree

    if rule not in OUTSIDE_RULES:
        raise TopoviewerError(f"outside rule must be one of {', '.join(OUTSIDE_RULES)}, got {rule!r}")
    centres = disc_centres(sheet, radius_mm, radius_mm / 10.0 if step_mm is None else step_mm)
    if rule == "strict":
        points = _patch_points(sheet, patch, voxel_mm)
        if len(points):
            nearest, _ = cKDTree(points).query(centres, k=1)
            centres = centres[nearest > radius_mm]
    else:
        centres = centres[~in_patch(sheet, patch, centres, voxel_mm)]
    if len(centres) == 0:
        raise TopoviewerError(
            f"no {radius_mm} mm-radius disc fits in sheet {sheet.name!r} outside the identified patches "
            f"({rule} rule)"
        )
    x, y = centres[np.random.default_rng(rng).integers(len(centres))]
    return float(x), float(y)


def in_patch(sheet, patch, points, voxel_mm=defaults.VOXEL_MM):
    """Which (x, y) points fall inside a patch: (k, 2) → (k,) bool.

    For a voxel mask, a point is inside when the voxel containing it is a patch voxel;
    for a unit mask, when its nearest unit is a patch unit.
    """
    patch = np.asarray(patch, dtype=bool)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if patch.shape == (sheet.n_units,):
        _, nearest = sheet.kdtree().query(points, k=1)
        return patch[nearest]
    grid = sheet.grid(voxel_mm)
    if patch.shape != grid.shape:
        _patch_points(sheet, patch, voxel_mm)  # raises the shape error
    rows, cols = _cell_indices(points, grid)
    return patch[rows, cols]


def disc_is_clipped(sheet, center_mm, radius_mm) -> bool:
    """Whether a disc reaches past the sheet's edge (so it holds fewer units than a whole disc)."""
    (x0, y0), (w, h) = sheet.origin_mm, sheet.extent_mm
    x, y = center_mm
    eps = 1e-9
    return bool(x - radius_mm < x0 - eps or y - radius_mm < y0 - eps
                or x + radius_mm > x0 + w + eps or y + radius_mm > y0 + h + eps)


def inside_site(sheet, peak_mm, patch, radius_mm=defaults.STIM_RADIUS_MM, *, voxel_mm=defaults.VOXEL_MM,
                step_mm=None):
    """The inside stimulation site: the patch centre, moved in only as far as needed to avoid the edge.

    The paper stimulates the centre of the face patch (the peak of selectivity). On a small
    sheet that centre can sit near an edge, where the disc is clipped and stimulates far
    fewer units than a disc elsewhere. When the disc around ``peak_mm`` is clipped, the
    site is the nearest unclipped candidate (grid of spacing ``step_mm``, default
    ``radius_mm / 10``) that still lies inside the patch; when no unclipped candidate lies
    in the patch, the peak itself (clipped).

    Returns
    -------
    (x, y), clipped : tuple of float, bool
    """
    peak = (float(peak_mm[0]), float(peak_mm[1]))
    if not disc_is_clipped(sheet, peak, radius_mm):
        return peak, False
    try:
        centres = disc_centres(sheet, radius_mm, radius_mm / 10.0 if step_mm is None else step_mm)
    except TopoviewerError:  # no whole disc fits the sheet at all
        return peak, True
    centres = centres[in_patch(sheet, patch, centres, voxel_mm)]
    if len(centres) == 0:
        return peak, True
    best = centres[int(np.argmin(np.hypot(*(centres - np.asarray(peak)).T)))]
    return (float(best[0]), float(best[1])), False


def _patch_points(sheet, patch, voxel_mm):
    """Positions (k, 2) of a unit patch mask or centres of a voxel patch mask."""
    patch = np.asarray(patch, dtype=bool)
    if patch.shape == (sheet.n_units,):
        return sheet.positions[patch]
    grid = sheet.grid(voxel_mm)
    if patch.shape == grid.shape:
        return grid.centres()[patch.ravel()]
    raise TopoviewerError(
        f"a patch mask for sheet {sheet.name!r} must have shape ({sheet.n_units},) (units) "
        f"or {grid.shape} ({voxel_mm} mm voxels), got {patch.shape}"
    )


def lesion_disc(activity, sheet, center_mm, radius_mm):
    """A copy of ``activity`` ((n_units,) or (B, n_units), float dtype kept) with the units of a disc silenced."""
    out = _activity_copy(activity, sheet.n_units)
    out[..., sheet.disc(center_mm, radius_mm)] = 0.0
    return out


def lesion_random(activity, fraction, rng=None):
    """A copy of ``activity`` with a random ``fraction`` of units silenced (the same units for every image).

    ``round(fraction · n_units)`` units are drawn without replacement; ``rng`` is a
    numpy Generator or an int seed.
    """
    if not 0.0 <= fraction <= 1.0:
        raise TopoviewerError(f"lesion fraction must be in [0, 1], got {fraction}")
    n = np.shape(activity)[-1]
    out = _activity_copy(activity, n)
    out[..., np.random.default_rng(rng).choice(n, size=int(round(fraction * n)), replace=False)] = 0.0
    return out


@dataclass(frozen=True)
class Stimulation:
    """The outcome of :func:`microstimulate`.

    Attributes
    ----------
    layer, next_layer : str
        Names of the stimulated sheet and of the sheet after it.
    site_mm : (x, y)
    radius_mm : float
    stimulated_units : int
        Units inside the stimulated disc.
    activity : (n_units,) array
        The clamped activity of the stimulated sheet.
    propagated : dict of str to (n_units_k,) arrays
        The evoked activity of every downstream sheet that was run.
    """

    layer: str
    next_layer: str
    site_mm: tuple[float, float]
    radius_mm: float
    stimulated_units: int
    activity: np.ndarray
    propagated: dict = field(default_factory=dict)


def microstimulate(
    model,
    sheet_name,
    center_mm,
    max_activation,
    *,
    radius_mm=defaults.STIM_RADIUS_MM,
    sigma_mm=defaults.STIM_SIGMA_MM,
    decay=defaults.STIM_DECAY,
    to=None,
):
    """Stimulate a disc of one sheet and propagate the evoked activity downstream.

    The sheet is clamped to :func:`stimulation_pattern` and the model runs forward
    from it (``model.propagate``) to the next sheet, or further up to and including
    ``to`` (default: every downstream sheet).

    Parameters
    ----------
    model : TopoModel
        Anything with ``sheet(name)``, ``next_sheet(name)`` and ``propagate(name, activity, to)``.
    sheet_name : str
        The stimulated sheet.
    center_mm : (x, y)
        Stimulation site; must lie on the sheet.
    max_activation : (n_units,) array
        The stimulated sheet's maximum activation per unit over held-out images.
    radius_mm, sigma_mm : float
        Disc radius and Gaussian decay σ.
    decay : {"peak1", "normal_density"}
        Scale of the decay (:func:`stimulation_pattern`).
    to : str, optional
        Last sheet to run.

    Returns
    -------
    Stimulation
    """
    sheet = model.sheet(sheet_name)
    next_layer = model.next_sheet(sheet.name)
    if next_layer is None:
        raise TopoviewerError(f"sheet {sheet.name!r} is the last sheet; there is nothing downstream to stimulate")
    if not sheet.contains(center_mm):
        raise TopoviewerError(f"stimulation site {tuple(center_mm)} lies outside sheet {sheet.name!r}")
    activity = stimulation_pattern(sheet, center_mm, max_activation, radius_mm, sigma_mm, decay)
    propagated = model.propagate(sheet.name, activity[None, :], to=to)
    return Stimulation(
        layer=sheet.name,
        next_layer=next_layer,
        site_mm=(float(center_mm[0]), float(center_mm[1])),
        radius_mm=float(radius_mm),
        stimulated_units=int(np.count_nonzero(sheet.distances_to(center_mm) <= radius_mm)),
        activity=activity,
        propagated={name: np.asarray(a)[0] for name, a in propagated.items()},
    )


def _activity_copy(activity, n_units):
    out = np.array(activity, copy=True)
    if not np.issubdtype(out.dtype, np.floating):
        out = out.astype(np.float64)
    if out.ndim not in (1, 2) or out.shape[-1] != n_units:
        raise TopoviewerError(f"expected activity of shape ({n_units},) or (B, {n_units}), got {out.shape}")
    return out
