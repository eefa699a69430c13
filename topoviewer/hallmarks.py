"""The hallmarks of the IT face-patch network (Lee et al. 2020, Figs. 3–5), measured.

:func:`measure` computes every hallmark of one trained model on the localizer;
:func:`compare` trains topographic seeds and non-topographic controls with one
recipe and collects their measurements; :mod:`topoviewer.report` writes them up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import defaults
from .analysis import (
    correlation_by_distance,
    dprime_maps,
    fraction_selective,
    neighbour_agreement,
    peak_distance,
    random_pair_distances,
)
from .errors import TopoviewerError
from .pipeline import Stimulator, default_stimuli, sheet_maps

__all__ = ["Recipe", "measure", "load_recipe"]


@dataclass
class Recipe:
    """How the default model is trained (sample_data/recipe.json)."""

    arch: str = "tdann_small"
    loss: str = "absolute"
    weight: float = 4.0
    steps: int = 2000
    batch_size: int = 128
    lr: float = 3e-3
    per_category: int = 500
    correlation_length_mm: float = defaults.CORRELATION_LENGTH_MM
    arch_config: dict = field(default_factory=dict)
    category_frequency: dict = field(default_factory=dict)

    def train_config(self, seed: int, control: bool = False, device: str = "cpu"):
        from .training import TrainConfig

        return TrainConfig(
            arch=self.arch, loss=self.loss, weight=0.0 if control else self.weight, steps=self.steps,
            batch_size=self.batch_size, lr=self.lr, per_category=self.per_category, seed=seed, device=device,
            correlation_length_mm=self.correlation_length_mm, arch_config=dict(self.arch_config),
            category_frequency=dict(self.category_frequency),
            checkpoint_every=max(1, self.steps // 4),
        )


def load_recipe(path) -> Recipe:
    try:
        return Recipe(**json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise TopoviewerError(f"{path}: not a valid recipe ({exc})") from None


def measure(model, stimuli=None, *, category="faces", seed=0, n_outside=8) -> dict:
    """Every hallmark of one model, on the first sheet ("cIT") and its next ("aIT").

    Returns a JSON-able dict: selectivity fractions, patch sizes, cluster strength,
    face–body peak distance (and the random-pair reference), the purity curve, the
    correlation-vs-distance curve with its near/far ratio, neighbour agreement of
    face d′, and inside- vs outside-patch microstimulation of the next sheet.
    """
    stimuli = default_stimuli(model) if stimuli is None else stimuli
    responses = model.responses(stimuli.images)
    cit = model.sheets[0]
    r = responses[cit.name]
    maps = sheet_maps(cit, r, stimuli.labels, stimuli.categories, seed=seed)
    s = maps.summary
    curve = correlation_by_distance(r, cit.positions, bin_mm=0.5)
    dp_face = maps.dprime[category]
    w, h = cit.extent_mm
    rand = random_pair_distances(10000, low=(0.1 * w, 0.1 * h), high=(0.9 * w, 0.9 * h), seed=seed)
    stim = Stimulator(model, cit.name, stimuli, category=category, seed=seed, responses=responses)
    inside = stim.stimulate(stim.site("inside"))
    rng = np.random.default_rng(seed)
    outside = []
    for _ in range(n_outside):
        try:
            outside.append(stim.stimulate(stim.site("outside", rng=rng)))
        except TopoviewerError:
            break
    nxt = model.sheets[1] if len(model.sheets) > 1 else None
    next_frac = None
    if nxt is not None:
        next_frac = fraction_selective(dprime_maps(responses[nxt.name], stimuli.labels, stimuli.categories)[category])
    return {
        "sheet": cit.name,
        "val_accuracy": model.meta.get("training", {}).get("val_accuracy"),
        "fraction_selective": s["fraction_selective"],
        "next_fraction_selective": next_frac,
        "largest_patch_voxels": s["largest_patch_voxels"],
        "peak_voxel_t": {c: float(np.nanmax(t)) if np.isfinite(t).any() else None for c, t in maps.voxel_t.items()},
        "cluster_strength": s["cluster_strength"],
        "peak_mm": s["peak_mm"],
        "face_body_peak_distance_mm": float(peak_distance(cit, maps.dprime["faces"], maps.dprime["bodies"]))
        if {"faces", "bodies"} <= set(stimuli.categories) else None,
        "random_pair_distance_mm": {"mean": float(rand.mean()), "p5": float(np.percentile(rand, 5))},
        "purity_curve": s.get("purity_curve"),
        "correlation_curve": {
            "distance_mm": curve.distance_mm.tolist(),
            "correlation": [None if not np.isfinite(v) else float(v) for v in curve.correlation],
        },
        "correlation_near": curve.at(0.0, 1.0),
        "correlation_far": curve.at(5.0, 6.0),
        "neighbour_dprime_agreement": neighbour_agreement(cit, dp_face, 1.0),
        "stimulation": {
            "inside_next_patch_mean": inside["next_patch_mean"],
            "outside_next_patch_mean": float(np.mean([o["next_patch_mean"] for o in outside])) if outside else None,
            "next_patch_baseline": inside["next_patch_baseline"],
            "next_patch_units": inside["next_patch_units"],
            "patch_rule": inside["patch_rule"],
            "inside_site_mm": inside["site_mm"],
        },
    }
