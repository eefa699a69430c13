"""The Lee 2020 analysis as one call per question, shared by the CLI and the GUI.

:func:`iter_analysis` runs the network over a stimulus set once (a generator of
progress) and computes every map of docs/science.md; methods §3–5 per sheet; :class:`Stimulator`
prepares the microstimulation experiment of §6 once so that each click is only a
stimulation pattern plus one propagation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from . import defaults
from .analysis import (
    calibrate_threshold,
    cardinal_bias,
    column_spacing,
    disc_is_clipped,
    dprime_maps,
    find_patches,
    find_pinwheels,
    fraction_selective,
    grating_tuning,
    inside_site,
    largest_patch_voxels,
    microstimulate,
    orientation_agreement,
    orientation_map,
    outside_site,
    patch_overlap,
    peak_distance,
    peak_point,
    pinwheel_density,
    preference_difference_by_distance,
    purity_curve,
    relation_pairs,
    spatial_null,
    split_halves,
    t_maps,
    units_in_voxels,
    voxel_cluster_strength,
    voxel_responses,
    voxel_t_maps,
)
from .analysis.stimulation import OUTSIDE_RULES
from .errors import TopoviewerError

__all__ = ["Analysis", "EarlyMaps", "SheetMaps", "StimulationResult", "Stimulator", "analyze", "default_stimuli",
           "early_sheet_maps", "iter_analysis"]


def default_stimuli(model, seed: int = 1234):
    """The procedural localizer at the model's input size."""
    from .stimuli import localizer

    return localizer(size=max(32, model.input_size), seed=seed)


@dataclass
class SheetMaps:
    """Every map of one sheet, computed once; the CLI, the GUI, figures and the report read it.

    Attributes
    ----------
    sheet : Sheet
    dprime : dict
        Per category, each unit's d′ (category vs all others).
    voxel_t : dict
        Per category, the simulated-fMRI voxel Welch t map (rows = y, cols = x).
    summary : dict
        The sheet's block of ``summary.json``.
    thresholds : dict
        Per category, the d′ threshold of a selective unit (0.85 or calibrated).
    null : SpatialNull or None
        The spatial null, when asked for.
    early : EarlyMaps or None
        Grating tuning, orientation map and pinwheels, for an analysis on gratings (then
        ``dprime`` and ``voxel_t`` are empty).
    """

    sheet: object
    dprime: dict
    voxel_t: dict
    summary: dict
    thresholds: dict = field(default_factory=dict)
    null: object = None
    early: object = None
    _purity: dict = field(default_factory=dict, repr=False, compare=False, init=False)

    def purity(self, category="faces", threshold=None):
        """The :class:`~topoviewer.analysis.PurityCurve` of a category's selective units (cached).

        ``threshold`` defaults to the analysis's d′ threshold for the category; ties of
        the purest region are broken by d′ (see :func:`~topoviewer.analysis.purity_curve`).
        Raises TopoviewerError where purity is undefined (no region holds enough units).
        """
        thr = self.thresholds.get(category, defaults.DPRIME_THRESHOLD) if threshold is None else float(threshold)
        key = (category, thr)
        if key not in self._purity:
            if category not in self.dprime:
                raise TopoviewerError(f"no d′ map for category {category!r}")
            dp = self.dprime[category]
            self._purity[key] = purity_curve(self.sheet, dp > thr, values=dp)
        return self._purity[key]


@dataclass
class Analysis:
    """Result of :func:`iter_analysis`: responses, maps per sheet and the JSON summary."""

    model_name: str
    stimuli_name: str
    categories: list
    labels: np.ndarray
    responses: dict
    sheets: dict = field(default_factory=dict)
    gratings: dict | None = None  # the grating factors, for an analysis on gratings

    def summary(self) -> dict:
        """The ``summary.json`` contract of ``topoviewer analyze``."""
        out = {
            "model": self.model_name,
            "stimuli": self.stimuli_name,
            "categories": list(self.categories),
        }
        if self.gratings is not None:
            out["gratings"] = self.gratings
        out["sheets"] = {name: maps.summary for name, maps in self.sheets.items()}
        return out


#: The patch criteria of ``--patch-criterion``: the paper's fixed rule, or also beating the spatial null.
PATCH_CRITERIA = ("paper", "null95")


def sheet_maps(
    sheet, responses, labels, categories, *, threshold=defaults.DPRIME_THRESHOLD, gain=1.0, fwhm_mm=defaults.FWHM_MM,
    voxel_mm=defaults.VOXEL_MM, purity_category="faces", seed=0, null=0, null_seed=0, patch_criterion="paper",
    light=False,
) -> SheetMaps:
    """All §3–5 maps and summary numbers of one sheet from its (images, units) responses.

    Parameters
    ----------
    threshold : float or "calibrated"
        d′ threshold of a selective unit: a number (default 0.85, Lee et al. 2020) or
        ``"calibrated"``: per category, the Poisson-noise calibration of the neural
        threshold 0.65 (:func:`~topoviewer.analysis.calibrate_threshold`) with ``gain``
        counts per unit of response.
    null : int
        Position shuffles of the spatial null (0: none).
    patch_criterion : {"paper", "null95"}
        ``paper``: a patch is ≥ 10 connected voxels with t > 10. ``null95``: that, and
        larger than the 95th percentile of the largest cluster under the spatial null
        (needs ``null``; 100 shuffles when 0).
    light : bool
        Only the d′ and voxel t maps (purity stays available through :meth:`SheetMaps.purity`),
        an empty summary: what live views of a model in training need.
    """
    if patch_criterion not in PATCH_CRITERIA:
        raise TopoviewerError(f"patch criterion must be one of {', '.join(PATCH_CRITERIA)}, got {patch_criterion!r}")
    if patch_criterion == "null95" and not null:
        null = 100
    dp = dprime_maps(responses, labels, categories)
    thresholds, rule = dprime_thresholds(responses, labels, categories, dp, threshold, gain)
    voxels = voxel_responses(sheet, responses, fwhm_mm, voxel_mm)
    vt = t_maps(voxels, labels, categories)
    if light:
        return SheetMaps(sheet, dp, vt, {}, thresholds)
    largest = {c: int(largest_patch_voxels(vt[c])) for c in categories}
    summary = {
        "units": sheet.n_units,
        "extent_mm": [sheet.extent_mm[0], sheet.extent_mm[1]],
        "dprime_threshold": {"rule": rule, **{c: thresholds[c] for c in categories}},
        "fraction_selective": {c: fraction_selective(dp[c], thresholds[c]) for c in categories},
        "largest_patch_voxels": largest,
        "peak_voxel_t": {c: float(np.nanmax(vt[c])) if np.isfinite(vt[c]).any() else None for c in categories},
        "peak_mm": {c: [float(v) for v in peak_point(sheet, dp[c])] for c in categories},
        "cluster_strength": {c: voxel_cluster_strength(voxels, labels, categories, c, seed=seed) for c in categories},
    }
    maps = SheetMaps(sheet, dp, vt, summary, thresholds)
    if null:
        maps.null = spatial_null(sheet, responses, labels, categories, n_shuffles=null, seed=null_seed,
                                 threshold=thresholds, fwhm_mm=fwhm_mm, voxel_mm=voxel_mm,
                                 purity_category=purity_category, split_seed=seed)
        summary["null"] = maps.null.to_json()
    min_size = {c: defaults.PATCH_MIN_VOXELS for c in categories}
    if patch_criterion == "null95":
        min_size = {c: max(min_size[c], int(np.floor(maps.null.patch_criterion(c))) + 1) for c in categories}
    summary["patch_criterion"] = {"rule": patch_criterion, "min_voxels": min_size}
    summary["patch"] = {c: bool(largest[c] >= min_size[c]) for c in categories}
    if purity_category in categories:
        try:
            curve = maps.purity(purity_category)
        except TopoviewerError:
            curve = None
        if curve is not None:
            summary["purity_curve"] = {
                "category": purity_category,
                "centre_mm": [float(v) for v in curve.centre],
                "distance_mm": [float(v) for v in curve.distance_mm],
                "purity": [_finite(v) for v in curve.purity],
                "tied_centres": int(len(curve.tied_centres)),
                "spread": [[_finite(lo), _finite(hi)] for lo, hi in curve.spread],
            }
    relations = {
        f"{a}–{b}": {
            "claim": claim, "peak_distance_mm": float(peak_distance(sheet, dp[a], dp[b])),
            "patch_overlap": _finite(patch_overlap(vt[a] > defaults.VOXEL_T_THRESHOLD, vt[b] > defaults.VOXEL_T_THRESHOLD)),
        }
        for a, b, claim in relation_pairs(categories)
    }
    if relations:
        summary["category_relations"] = relations
    if "faces–bodies" in relations:
        summary["face_body_peak_distance_mm"] = relations["faces–bodies"]["peak_distance_mm"]
    return maps


@dataclass
class EarlyMaps:
    """The early visual maps of one sheet (docs/science.md, "Early visual maps").

    Attributes
    ----------
    tuning : GratingTuning
        Per unit: preferred orientation, OSI, preferred SF, hue and colour selectivity (units without
        a grating response: orientation NaN, OSI 0).
    orientation : OrientationMap
        The OSI-weighted complex orientation map on a grid over the sheet.
    pinwheels : Pinwheels
    column_spacing_mm : float
        Λ of the orientation map (NaN for a flat map).
    colour_note : str
        Why there is no colour map ("" when there is one).
    """

    tuning: object
    orientation: object
    pinwheels: object
    column_spacing_mm: float
    colour_note: str = ""

    def unit_maps(self) -> dict:
        """The per-unit maps: ``orientation`` (°), ``osi``, ``sf`` (cycles/image), ``colour`` (preferred
        hue, °) and ``colour_selectivity`` (NaN where colour does not apply)."""
        t = self.tuning
        nan = np.full(len(t.osi), np.nan)
        return {
            "orientation": t.orientation_deg, "osi": t.osi, "sf": t.sf_cpi,
            "colour": nan if t.hue_deg is None else t.hue_deg,
            "colour_selectivity": nan if t.colour_selectivity is None else t.colour_selectivity,
        }

    def arrays(self) -> dict:
        """What the sheet's .npz stores: :meth:`unit_maps`, the pinwheel list (k, 3: x, y, charge) and the
        smoothed orientation map (angle and strength rasters, with their pixel)."""
        return {
            **self.unit_maps(),
            "pinwheels": self.pinwheels.to_array(),
            "orientation_map": self.orientation.orientation_deg.astype(np.float32),
            "orientation_strength": self.orientation.strength.astype(np.float32),
            "orientation_map_pixel_mm": np.asarray(self.orientation.grid.pixel_mm),
        }


#: Units whose smallest and largest grating responses differ by less than this have no tuning.
FLAT_TUNING = 1e-6


def early_sheet_maps(sheet, responses, stimuli, *, colour=True, seed=0) -> SheetMaps:
    """Grating tuning, the orientation map, pinwheels and their summary for one sheet.

    Parameters
    ----------
    sheet : Sheet
    responses : (n_images, n_units) array
        Responses to ``stimuli``.
    stimuli : GratingSet
    colour : bool
        Whether hue can reach the network (False for 1-channel models: colour is then reported
        as not applicable).
    seed : int
        Seed of the unit subset of the preference-difference curve on large sheets.
    """
    r = np.asarray(responses)
    hues = stimuli.hue_deg if colour else ()
    tuning = grating_tuning(r, stimuli.orientation_deg, stimuli.sf_cpi, stimuli.colour, hues)
    live = np.ptp(r, axis=0) > FLAT_TUNING
    theta = np.where(live, tuning.orientation_deg, np.nan)
    tuning = replace(tuning, orientation_deg=theta, osi=np.where(live, tuning.osi, 0.0))
    omap = orientation_map(sheet, theta, weight=tuning.osi)
    pinwheels = find_pinwheels(omap)
    try:
        spacing = column_spacing(omap)
    except TopoviewerError:
        spacing = float("nan")
    note = ""
    if not colour:
        note = "1-channel (grayscale) model: hue reaches it only as luminance"
    elif not len(stimuli.hue_deg):
        note = "no chromatic gratings in the stimulus set"
    early = EarlyMaps(tuning, omap, pinwheels, spacing, note)
    distance, difference, n_pairs = preference_difference_by_distance(sheet, theta, seed=seed)
    sfs, counts = np.unique(tuning.sf_cpi[live], return_counts=True)
    block = {
        "responsive_units": int(live.sum()),
        "orientation": {
            "mean_osi": _finite(np.mean(tuning.osi[live])) if live.any() else None,
            "median_osi": _finite(np.median(tuning.osi[live])) if live.any() else None,
            "neighbour_agreement": _finite(orientation_agreement(sheet, theta)),
            "cardinal_bias": {k: _finite(v) for k, v in cardinal_bias(theta).items()},
            "difference_by_distance": {
                "distance_mm": [float(v) for v in distance], "mean_difference_deg": [_finite(v) for v in difference],
                "n_pairs": [int(v) for v in n_pairs]},
        },
        "orientation_map": {
            "pixel_mm": omap.grid.pixel_mm, "fwhm_mm": omap.fwhm_mm, "column_spacing_mm": _finite(spacing),
            "pinwheels": int(len(pinwheels.charge)), "area_mm2": pinwheels.area_mm2,
            "pinwheel_density": _finite(pinwheel_density(pinwheels, spacing)),
            "pinwheels_mm": [[float(x), float(y), float(c)] for x, y, c in pinwheels.to_array()],
        },
        "sf": {"preferred_cycles_per_image": {f"{v:g}": int(c) for v, c in zip(sfs, counts)}},
        "colour": {"applicable": False, "reason": note},
    }
    if not note:
        nearest = _nearest_hue(tuning.hue_deg[live], stimuli.hue_deg)
        block["colour"] = {
            "applicable": True,
            "mean_selectivity": _finite(np.mean(tuning.colour_selectivity[live])) if live.any() else None,
            "preferred_hue": {name: int(np.count_nonzero(nearest == k)) for k, name in enumerate(stimuli.colours[1:])},
        }
    if stimuli.fov_deg is not None:
        block["sf"]["preferred_cycles_per_degree"] = {
            f"{v / stimuli.fov_deg:g}": int(c) for v, c in zip(sfs, counts)}
    summary = {"units": sheet.n_units, "extent_mm": [sheet.extent_mm[0], sheet.extent_mm[1]], "gratings": block}
    return SheetMaps(sheet, {}, {}, summary, early=early)


def _nearest_hue(hue_deg, levels_deg):
    """Index of the nearest of ``levels_deg`` on the 360° circle (−1 for NaN)."""
    d = np.abs(np.mod(np.asarray(hue_deg)[:, None] - np.asarray(levels_deg)[None, :] + 180.0, 360.0) - 180.0)
    return np.where(np.isfinite(hue_deg), np.argmin(np.nan_to_num(d, nan=0.0), axis=1), -1)


def dprime_thresholds(responses, labels, categories, dp, threshold, gain=1.0):
    """Per-category d′ thresholds and the rule's name."""
    if isinstance(threshold, str):
        if threshold != "calibrated":
            try:
                threshold = float(threshold)
            except ValueError:
                raise TopoviewerError(f"d′ threshold must be a number or 'calibrated', got {threshold!r}") from None
        else:
            out = {}
            for c in dp:
                cal = calibrate_threshold(responses, labels, categories, c, gain=gain)
                out[c] = float(cal.threshold)
            return out, f"calibrated (Poisson noise, gain {gain:g}, neural d′ {defaults.NEURAL_DPRIME_THRESHOLD})"
    if not np.isfinite(threshold):
        raise TopoviewerError(f"d′ threshold must be a finite number, got {threshold}")
    return {c: float(threshold) for c in dp}, f"{float(threshold):g}"


def _finite(v):
    return float(v) if np.isfinite(v) else None


def iter_analysis(model, stimuli=None, *, sheets=None, batch_size=256, **options):
    """Generator: yields ``(stage, done, total)``, returns an :class:`Analysis`."""
    from .stimuli import GratingSet

    stimuli = default_stimuli(model) if stimuli is None else stimuli
    if isinstance(stimuli, GratingSet) and (options.get("null") or options.get("patch_criterion", "paper") != "paper"):
        raise TopoviewerError("the spatial null and --patch-criterion null95 apply to category stimuli (localizer, "
                              "lfw, a folder), not to gratings")
    responses = yield from _tag("responses", model.iter_responses(stimuli.images, sheets, batch_size))
    result = Analysis(model.name, stimuli.name, list(stimuli.categories), stimuli.labels, responses)
    if isinstance(stimuli, GratingSet):
        result.gratings = stimuli.factors()
    for i, (name, resp) in enumerate(responses.items()):
        if isinstance(stimuli, GratingSet):
            result.sheets[name] = early_sheet_maps(model.sheet(name), resp, stimuli, colour=model.in_channels == 3,
                                                   seed=options.get("seed", 0))
        else:
            result.sheets[name] = sheet_maps(model.sheet(name), resp, stimuli.labels, stimuli.categories, **options)
        yield "maps", i + 1, len(responses)
    return result


def analyze(model, stimuli=None, **options) -> Analysis:
    """Plain-call form of :func:`iter_analysis`."""
    from .model import drain  # torch: this module stays importable without it (cached maps)

    return drain(iter_analysis(model, stimuli, **options))


def _tag(stage, gen):
    result = None
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        yield stage, done, total
    return result


@dataclass(frozen=True)
class StimulationResult:
    """One microstimulation, read out in the next sheet's patch (what ``topoviewer stimulate`` prints).

    Attributes
    ----------
    layer, next_layer : str
        The stimulated sheet and the sheet read out.
    site_mm : (x, y)
    radius_mm, sigma_mm : float
    decay : str
        ``"peak1"`` or ``"normal_density"``.
    stimulated_units : int
        Units in the disc (fewer when ``clipped``).
    clipped : bool
        Whether the disc reaches past the sheet's edge.
    next_patch_mean : float
        Mean evoked activity of the next sheet's patch units (raw).
    baseline : float
        The same read-out with the stimulated sheet silent.
    next_patch_delta : float
        ``next_patch_mean − baseline``.
    next_mean : float
        Mean evoked activity of the whole next sheet.
    next_patch_units : (k,) int array
        The next sheet's patch units; ``patch_rule`` says how they were chosen.
    activity : (n_units,) array
        The clamped activity of the stimulated sheet.
    propagated : (n_next_units,) array
        The next sheet's evoked activity.
    site : str
        How the site was chosen: ``"inside"``, ``"outside"``, ``"click"`` or ``"at"``.
    compute_ms : float
        Time of the stimulation and propagation.
    """

    layer: str
    next_layer: str
    site_mm: tuple
    radius_mm: float
    sigma_mm: float
    decay: str
    stimulated_units: int
    clipped: bool
    next_patch_mean: float
    baseline: float
    next_patch_delta: float
    next_mean: float
    next_patch_units: np.ndarray
    patch_rule: str
    activity: np.ndarray
    propagated: np.ndarray
    site: str = "at"
    compute_ms: float = float("nan")

    def to_json(self) -> dict:
        """The JSON of ``topoviewer stimulate --json`` (no arrays; the patch as a unit count)."""
        out = {k: getattr(self, k) for k in (
            "layer", "next_layer", "radius_mm", "sigma_mm", "decay", "stimulated_units", "clipped",
            "next_patch_mean", "baseline", "next_patch_delta", "next_mean", "patch_rule", "site", "compute_ms")}
        out["site_mm"] = [float(v) for v in self.site_mm]
        out["next_patch_units"] = int(len(self.next_patch_units))
        return out


class Stimulator:
    """The microstimulation experiment (docs/science.md; methods §6), prepared once per (model, sheet).

    Half A of the stimuli locates the face patch of the stimulated sheet and of the next
    sheet (centre = most selective 1 mm disc, region = voxels with t > threshold); half B
    gives every unit's maximum activation. The next sheet's read-out with the stimulated
    sheet silenced is the **baseline** (biases and normalisation keep it active), so
    every stimulation is reported raw and as Δ from that baseline. :meth:`stimulate` is
    then one pattern and one propagation: fast enough for interactive clicking.

    Parameters
    ----------
    outside_rule : {"paper", "strict"}
        How :meth:`site` picks outside sites (:func:`~topoviewer.analysis.outside_site`).
    """

    def __init__(self, model, layer=None, stimuli=None, *, category="faces", seed=0,
                 threshold=defaults.VOXEL_T_THRESHOLD, fwhm_mm=defaults.FWHM_MM, voxel_mm=defaults.VOXEL_MM,
                 responses=None, outside_rule=defaults.STIM_OUTSIDE_RULE):
        self.model = model
        self.layer = model.sheet(layer).name if layer else model.sheet_names[0]
        self.next_layer = model.next_sheet(self.layer)
        if self.next_layer is None:
            raise TopoviewerError(f"layer {self.layer!r} is the last sheet; nothing downstream to propagate to")
        if outside_rule not in OUTSIDE_RULES:
            raise TopoviewerError(f"outside rule must be one of {', '.join(OUTSIDE_RULES)}, got {outside_rule!r}")
        stimuli = default_stimuli(model) if stimuli is None else stimuli
        if category not in stimuli.categories:
            raise TopoviewerError(f"category {category!r} is not in the stimuli ({', '.join(stimuli.categories)})")
        self.category, self.seed, self.outside_rule = category, seed, outside_rule
        ia, ib = split_halves(stimuli.labels, seed)
        half_a, half_b = stimuli.subset(ia), stimuli.subset(ib)
        names = [self.layer, self.next_layer]
        if responses is None:
            resp_a = model.responses(half_a.images, names)
            resp_b = model.responses(half_b.images, [self.layer])
        else:  # (images, units) responses over `stimuli`, already computed
            resp_a = {n: responses[n][ia] for n in names}
            resp_b = {self.layer: responses[self.layer][ib]}
        self.sheet = model.sheet(self.layer)
        self.next_sheet = model.sheet(self.next_layer)
        opts = dict(fwhm_mm=fwhm_mm, voxel_mm=voxel_mm)
        self.centre = {}
        self.patch_mask = {}
        for name in names:
            sheet = model.sheet(name)
            dp = dprime_maps(resp_a[name], half_a.labels, half_a.categories)[category]
            t_map = voxel_t_maps(sheet, resp_a[name], half_a.labels, half_a.categories, **opts)[category]
            self.centre[name] = tuple(float(v) for v in peak_point(sheet, dp))
            self.patch_mask[name] = find_patches(t_map, threshold=threshold, min_voxels=1)[0] > 0
        self.max_activation = resp_b[self.layer].max(axis=0)
        self.next_patch_units, self.patch_rule = self._patch_units(self.next_sheet, voxel_mm)
        self.voxel_mm = voxel_mm
        self.baseline = self.model.propagate(self.layer, np.zeros(self.sheet.n_units, np.float32),
                                             to=self.next_layer)[self.next_layer][0]

    def _patch_units(self, sheet, voxel_mm):
        units = np.flatnonzero(units_in_voxels(sheet, self.patch_mask[sheet.name], voxel_mm))
        if len(units):
            return units, "selective voxels (t > threshold)"
        return sheet.disc(self.centre[sheet.name], defaults.PATCH_RADIUS_MM), "units within 3 mm of the peak"

    def site(self, where: str, rng=None, radius_mm=defaults.STIM_RADIUS_MM, rule=None):
        """The ``inside`` site or a random ``outside`` site (``rule``, default: this experiment's outside rule).

        Inside is the patch centre, moved in only as far as needed for an unclipped disc
        that still lies in the patch (:func:`~topoviewer.analysis.inside_site`).
        """
        if where == "inside":
            return inside_site(self.sheet, self.centre[self.layer], self.patch_mask[self.layer], radius_mm,
                               voxel_mm=self.voxel_mm)[0]
        if where == "outside":
            rng = np.random.default_rng(self.seed) if rng is None else rng
            return tuple(float(v) for v in outside_site(self.sheet, self.patch_mask[self.layer], radius_mm, rng,
                                                         rule=rule or self.outside_rule,
                                                         voxel_mm=self.voxel_mm))
        raise TopoviewerError(f"site must be 'inside' or 'outside', got {where!r}")

    def stimulate(self, center_mm, radius_mm=defaults.STIM_RADIUS_MM, sigma_mm=defaults.STIM_SIGMA_MM,
                  decay=defaults.STIM_DECAY, site="at") -> StimulationResult:
        """Stimulate a disc at ``center_mm`` and read out the next sheet's patch.

        ``next_patch_mean`` is the raw read-out of the next sheet's patch units,
        ``baseline`` the same read-out with the stimulated sheet silent, and
        ``next_patch_delta`` their difference (negative: the stimulation suppressed the patch).
        ``site`` labels how the site was chosen.
        """
        t0 = time.perf_counter()
        if not self.sheet.contains(center_mm):
            (x0, y0), (w, h) = self.sheet.origin_mm, self.sheet.extent_mm
            raise TopoviewerError(
                f"site ({center_mm[0]:g}, {center_mm[1]:g}) mm is outside sheet {self.layer!r} "
                f"(expected x in [{x0:g}, {x0 + w:g}], y in [{y0:g}, {y0 + h:g}])"
            )
        if not (np.isfinite(radius_mm) and radius_mm > 0):
            raise TopoviewerError(f"stimulation radius must be a positive number of mm, got {radius_mm}")
        result = microstimulate(self.model, self.layer, center_mm, self.max_activation, radius_mm=radius_mm,
                                sigma_mm=sigma_mm, decay=decay, to=self.next_layer)
        nxt = result.propagated[self.next_layer]
        mean = float(nxt[self.next_patch_units].mean())
        baseline = float(self.baseline[self.next_patch_units].mean())
        return StimulationResult(
            layer=self.layer, next_layer=self.next_layer, site_mm=result.site_mm, radius_mm=result.radius_mm,
            sigma_mm=float(sigma_mm), decay=decay, stimulated_units=result.stimulated_units,
            clipped=disc_is_clipped(self.sheet, center_mm, radius_mm), next_patch_mean=mean, baseline=baseline,
            next_patch_delta=mean - baseline, next_mean=float(nxt.mean()), next_patch_units=self.next_patch_units,
            patch_rule=self.patch_rule, activity=result.activity, propagated=nxt, site=site,
            compute_ms=1000.0 * (time.perf_counter() - t0),
        )
