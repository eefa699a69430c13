"""The hallmarks of the IT face-patch network (Lee et al. 2020, Figs. 3–5), measured.

:func:`measure` computes every hallmark of one trained model on the localizer;
:func:`topoviewer.report.run_hallmarks` trains topographic seeds and non-topographic
controls with one recipe (a :class:`~topoviewer.training.TrainConfig`), measures them
and writes the report.
"""

from __future__ import annotations

import numpy as np

from . import defaults
from .analysis import (
    correlation_by_distance,
    dprime_maps,
    fraction_selective,
    neighbour_agreement,
    random_pair_distances,
)
from .errors import TopoviewerError
from .pipeline import Stimulator, default_stimuli, dprime_thresholds, sheet_maps

__all__ = ["measure"]


def measure(model, stimuli=None, *, category="faces", seed=0, n_outside=8, null=100, photos=True) -> dict:
    """Every hallmark of one model, on the first sheet ("cIT") and its next ("aIT").

    Returns a JSON-able dict: selectivity fractions (d′ > 0.85 and calibrated), patch
    sizes and patches under the paper's rule and the null95 rule, cluster strength,
    face–body peak distance (and the random-pair reference), the purity curve (with its
    spread over tied centres), the correlation-vs-distance curve with its near/far
    values, neighbour agreement of face d′, the spatial null's p-values (``null``
    position shuffles), and inside- vs outside-patch microstimulation of the next sheet
    for both decay profiles, raw and as Δ from the silent-sheet baseline (outside sites:
    the paper's rule; the strict rule as a comparison). With ``photos``, the transfer to
    real photographs (LFW, validation only) of every sheet
    (:func:`~topoviewer.analysis.photos.photo_transfer`) and where the cIT face patch sits
    relative to the sheet's border (:func:`~topoviewer.analysis.photos.edge_profile`).
    """
    stimuli = default_stimuli(model) if stimuli is None else stimuli
    responses = model.responses(stimuli.images)
    cit = model.sheets[0]
    r = responses[cit.name]
    maps = sheet_maps(cit, r, stimuli.labels, stimuli.categories, seed=seed, null=null, patch_criterion="null95")
    s = maps.summary
    calibrated, rule = dprime_thresholds(r, stimuli.labels, stimuli.categories, maps.dprime, "calibrated")
    curve = correlation_by_distance(r, cit.positions, bin_mm=0.5)
    dp_face = maps.dprime[category]
    w, h = cit.extent_mm
    rand = random_pair_distances(10000, low=(0.1 * w, 0.1 * h), high=(0.9 * w, 0.9 * h), seed=seed)
    stimulation = {}
    stim = Stimulator(model, cit.name, stimuli, category=category, seed=seed, responses=responses)
    inside_site = stim.site("inside")
    for outside_rule in ("paper", "strict"):
        rng = np.random.default_rng(seed)
        sites = []
        for _ in range(n_outside):
            try:
                sites.append(stim.site("outside", rng=rng, rule=outside_rule))
            except TopoviewerError:
                break
        for decay in ("peak1", "normal_density"):
            if outside_rule == "strict" and decay != defaults.STIM_DECAY:
                continue  # the strict rule is a comparison for the default decay only
            inside = stim.stimulate(inside_site, decay=decay)
            outside = [stim.stimulate(site, decay=decay) for site in sites]
            stimulation[f"{decay}/{outside_rule}"] = {
                "inside_next_patch_mean": inside.next_patch_mean,
                "inside_delta": inside.next_patch_delta,
                "outside_next_patch_mean": float(np.mean([o.next_patch_mean for o in outside])) if outside else None,
                "outside_delta": float(np.mean([o.next_patch_delta for o in outside])) if outside else None,
                "outside_deltas": [o.next_patch_delta for o in outside],
                "baseline": inside.baseline,
                "inside_units": inside.stimulated_units,
                "inside_clipped": inside.clipped,
                "outside_units": float(np.mean([o.stimulated_units for o in outside])) if outside else None,
                "next_patch_units": len(inside.next_patch_units),
                "patch_rule": inside.patch_rule,
                "inside_site_mm": list(inside.site_mm),
                "peak_mm": list(stim.centre[cit.name]),
            }
    nxt = model.sheets[1] if len(model.sheets) > 1 else None
    next_frac = None
    if nxt is not None:
        next_frac = fraction_selective(dprime_maps(responses[nxt.name], stimuli.labels, stimuli.categories)[category])
    nl = s.get("null", {})
    photo = {}
    if photos:
        from .analysis.photos import edge_profile, photo_transfer
        from .stimuli import lfw

        transfer = photo_transfer(model, stimuli, lfw(size=max(32, model.input_size)), responses=responses,
                                  maps={cit.name: maps})
        photo = {
            "photos": {name: {k: v for k, v in e.items() if k != "patch_response"} for name, e in transfer.items()},
            "edge_profile": edge_profile(cit, np.nan_to_num(maps.voxel_t[category], nan=-np.inf)
                                         > defaults.VOXEL_T_THRESHOLD),
        }
    return {
        **photo,
        "sheet": cit.name,
        "val_accuracy": model.meta.get("training", {}).get("val_accuracy"),
        "fraction_selective": s["fraction_selective"],
        "fraction_selective_calibrated": {c: fraction_selective(maps.dprime[c], calibrated[c])
                                          for c in stimuli.categories},
        "calibrated_threshold": {"rule": rule, **calibrated},
        "next_fraction_selective": next_frac,
        "largest_patch_voxels": s["largest_patch_voxels"],
        "patch_null95": s["patch"],
        "patch_null95_min_voxels": s["patch_criterion"]["min_voxels"],
        "peak_voxel_t": s["peak_voxel_t"],
        "cluster_strength": s["cluster_strength"],
        "peak_mm": s["peak_mm"],
        "face_body_peak_distance_mm": s.get("face_body_peak_distance_mm"),
        "random_pair_distance_mm": {"mean": float(rand.mean()), "p5": float(np.percentile(rand, 5))},
        "purity_curve": s.get("purity_curve"),
        "correlation_curve": {
            "distance_mm": curve.distance_mm.tolist(),
            "correlation": [None if not np.isfinite(v) else float(v) for v in curve.correlation],
        },
        "correlation_near": curve.at(0.0, 1.0),
        "correlation_far": curve.at(5.0, 6.0),
        "neighbour_dprime_agreement": neighbour_agreement(cit, dp_face, 1.0),
        "null": {
            "n_shuffles": nl.get("n_shuffles", 0),
            "p": {
                **{f"{c}_patch_voxels": nl["categories"][c]["largest_patch_voxels"]["p"] for c in ("faces", "bodies")
                   if c in nl.get("categories", {})},
                **{f"{c}_peak_t": nl["categories"][c]["peak_voxel_t"]["p"] for c in ("faces", "bodies")
                   if c in nl.get("categories", {})},
                **{f"{c}_cluster_strength": nl["categories"][c]["cluster_strength"]["p"] for c in ("faces", "bodies")
                   if c in nl.get("categories", {})},
                "purity_1_2mm": nl.get("purity_1_2mm", {}).get("p"),
                "near_minus_far": nl.get("near_minus_far_correlation", {}).get("p"),
                "face_body_distance": nl.get("face_body_peak_distance_mm", {}).get("p"),
            },
            "faces_patch_null_p95": nl.get("categories", {}).get("faces", {}).get("largest_patch_voxels", {})
            .get("null_p95"),
            "purity_band": nl.get("purity_band"),
        },
        "stimulation": stimulation,
    }
