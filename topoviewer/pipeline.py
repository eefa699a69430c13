"""The Lee 2020 analysis as one call per question, shared by the CLI and the GUI.

:func:`iter_analysis` runs the network over a stimulus set once (a generator of
progress) and computes every map of SCIENCE.md §3–5 per sheet; :class:`Stimulator`
prepares the microstimulation experiment of §6 once so that each click is only a
stimulation pattern plus one propagation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import defaults
from .analysis import (
    dprime_maps,
    find_patches,
    fraction_selective,
    largest_patch_voxels,
    microstimulate,
    outside_site,
    peak_distance,
    peak_point,
    purity_curve,
    split_halves,
    t_maps,
    units_in_voxels,
    voxel_cluster_strength,
    voxel_responses,
    voxel_t_maps,
)
from .errors import TopoviewerError
from .model import drain

__all__ = ["Analysis", "SheetMaps", "iter_analysis", "analyze", "Stimulator", "default_stimuli"]


def default_stimuli(model, seed: int = 1234):
    """The procedural localizer at the model's input size."""
    from .stimuli import localizer

    return localizer(size=max(32, model.input_size), seed=seed)


@dataclass
class SheetMaps:
    """Every map of one sheet: per-unit d′ and per-voxel t for each category."""

    dprime: dict
    voxel_t: dict
    summary: dict


@dataclass
class Analysis:
    """Result of :func:`iter_analysis`: responses, maps per sheet and the JSON summary."""

    model_name: str
    stimuli_name: str
    categories: list
    labels: np.ndarray
    responses: dict
    sheets: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The ``summary.json`` contract of ``topoviewer analyze``."""
        return {
            "model": self.model_name,
            "stimuli": self.stimuli_name,
            "categories": list(self.categories),
            "sheets": {name: maps.summary for name, maps in self.sheets.items()},
        }


def sheet_maps(
    sheet, responses, labels, categories, *, threshold=defaults.DPRIME_THRESHOLD, fwhm_mm=defaults.FWHM_MM,
    voxel_mm=defaults.VOXEL_MM, purity_category="faces", seed=0,
) -> SheetMaps:
    """All §3–5 maps and summary numbers of one sheet from its (images, units) responses."""
    dp = dprime_maps(responses, labels, categories)
    voxels = voxel_responses(sheet, responses, fwhm_mm, voxel_mm)
    vt = t_maps(voxels, labels, categories)
    summary = {
        "units": sheet.n_units,
        "extent_mm": [sheet.extent_mm[0], sheet.extent_mm[1]],
        "fraction_selective": {c: fraction_selective(dp[c], threshold) for c in categories},
        "largest_patch_voxels": {c: int(largest_patch_voxels(vt[c])) for c in categories},
        "peak_mm": {c: [float(v) for v in peak_point(sheet, dp[c])] for c in categories},
        "cluster_strength": {c: voxel_cluster_strength(voxels, labels, categories, c, seed=seed) for c in categories},
    }
    if purity_category in categories:
        # a channel grid has one unit per cell: every cell is a region of its own
        curve = purity_curve(sheet, dp[purity_category] > threshold, min_units=1 if sheet.grid_shape else 3)
        summary["purity_curve"] = {
            "category": purity_category,
            "centre_mm": [float(v) for v in curve.centre],
            "distance_mm": [float(v) for v in curve.distance_mm],
            "purity": [None if not np.isfinite(v) else float(v) for v in curve.purity],
        }
    if {"faces", "bodies"} <= set(categories):
        summary["face_body_peak_distance_mm"] = float(peak_distance(sheet, dp["faces"], dp["bodies"]))
    return SheetMaps(dp, vt, summary)


def iter_analysis(model, stimuli=None, *, sheets=None, batch_size=256, **options):
    """Generator: yields ``(stage, done, total)``, returns an :class:`Analysis`."""
    stimuli = default_stimuli(model) if stimuli is None else stimuli
    responses = yield from _tag("responses", model.iter_responses(stimuli.images, sheets, batch_size))
    result = Analysis(model.name, stimuli.name, list(stimuli.categories), stimuli.labels, responses)
    for i, (name, resp) in enumerate(responses.items()):
        result.sheets[name] = sheet_maps(model.sheet(name), resp, stimuli.labels, stimuli.categories, **options)
        yield "maps", i + 1, len(responses)
    return result


def analyze(model, stimuli=None, **options) -> Analysis:
    """Plain-call form of :func:`iter_analysis`."""
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


class Stimulator:
    """The microstimulation experiment (SCIENCE §6), prepared once per (model, sheet).

    Half A of the stimuli locates the face patch of the stimulated sheet and of the next
    sheet (centre = most selective 1 mm disc, region = voxels with t > threshold); half B
    gives every unit's maximum activation. :meth:`stimulate` is then one pattern and one
    propagation: fast enough for interactive clicking.
    """

    def __init__(self, model, layer=None, stimuli=None, *, category="faces", seed=0,
                 threshold=defaults.VOXEL_T_THRESHOLD, fwhm_mm=defaults.FWHM_MM, voxel_mm=defaults.VOXEL_MM,
                 responses=None):
        self.model = model
        self.layer = model.sheet(layer).name if layer else model.sheet_names[0]
        self.next_layer = model.next_sheet(self.layer)
        if self.next_layer is None:
            raise TopoviewerError(f"layer {self.layer!r} is the last sheet; nothing downstream to propagate to")
        stimuli = default_stimuli(model) if stimuli is None else stimuli
        if category not in stimuli.categories:
            raise TopoviewerError(f"category {category!r} is not in the stimuli ({', '.join(stimuli.categories)})")
        self.category, self.seed = category, seed
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

    def site(self, where: str, rng=None, radius_mm=defaults.STIM_RADIUS_MM):
        """The ``inside`` site (patch centre) or a random ``outside`` site."""
        if where == "inside":
            return self.centre[self.layer]
        if where == "outside":
            rng = np.random.default_rng(self.seed) if rng is None else rng
            return tuple(float(v) for v in outside_site(self.sheet, self.patch_mask[self.layer], radius_mm, rng,
                                                         voxel_mm=self.voxel_mm))
        raise TopoviewerError(f"site must be 'inside' or 'outside', got {where!r}")

    def stimulate(self, center_mm, radius_mm=defaults.STIM_RADIUS_MM, sigma_mm=defaults.STIM_SIGMA_MM) -> dict:
        """Stimulate a disc at ``center_mm``; the ``topoviewer stimulate`` JSON plus the maps."""
        if not self.sheet.contains(center_mm):
            (x0, y0), (w, h) = self.sheet.origin_mm, self.sheet.extent_mm
            raise TopoviewerError(
                f"site ({center_mm[0]:g}, {center_mm[1]:g}) mm is outside sheet {self.layer!r} "
                f"(expected x in [{x0:g}, {x0 + w:g}], y in [{y0:g}, {y0 + h:g}])"
            )
        result = microstimulate(self.model, self.layer, center_mm, self.max_activation, radius_mm=radius_mm,
                                sigma_mm=sigma_mm, to=self.next_layer)
        nxt = result.propagated[self.next_layer]
        return {
            "layer": self.layer,
            "next_layer": self.next_layer,
            "site_mm": list(result.site_mm),
            "radius_mm": result.radius_mm,
            "stimulated_units": result.stimulated_units,
            "next_patch_mean": float(nxt[self.next_patch_units].mean()),
            "next_mean": float(nxt.mean()),
            "next_patch_baseline": float(self.baseline[self.next_patch_units].mean()),
            "next_patch_units": int(len(self.next_patch_units)),
            "patch_rule": self.patch_rule,
            "activity": result.activity,
            "propagated": nxt,
        }

