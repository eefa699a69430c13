"""The hallmark report: train topographic seeds and controls, measure, write markdown.

``topoviewer hallmarks --recipe sample_data/recipe.json --seeds 5 --controls 3 --out docs``
trains every model with the recipe (controls: spatial weight 0), measures each with
:func:`topoviewer.hallmarks.measure` and writes ``docs/hallmarks.md`` plus its figures
and the raw numbers (``docs/hallmarks.json``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .io import atomic_write

__all__ = ["run_early", "run_hallmarks", "train_models", "write_early_section", "write_report"]


def run_config(recipe, seed, control=False, device="cpu"):
    """The recipe for one seed of the report: a control has spatial weight 0; 4 checkpoints per run."""
    return dataclasses.replace(recipe, seed=seed, weight=0.0 if control else recipe.weight, device=device,
                               checkpoint_every=max(1, recipe.steps // 4))


def _train_one(args):
    recipe, seed, control, path = args
    import torch

    torch.set_num_threads(1)
    from .model import drain
    from .training import train

    if not Path(path).exists():
        drain(train(run_config(recipe, seed, control), path))
    return path


def train_models(recipe, seeds, controls, models_dir, jobs=2, first_seed=0) -> list:
    """Train (or reuse, when the file exists) ``seeds`` topographic runs of ``recipe`` (seeds ``first_seed`` …)
    and ``controls`` α = 0 runs (seeds ``first_seed + 100`` …) into ``models_dir``, ``jobs`` at a time;
    returns the plan, ``[(recipe, seed, control, path), …]``."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    plan = [(recipe, first_seed + i, False, str(models_dir / f"topo_seed{first_seed + i}.safetensors"))
            for i in range(seeds)]
    plan += [(recipe, first_seed + 100 + i, True, str(models_dir / f"control_seed{first_seed + 100 + i}.safetensors"))
             for i in range(controls)]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(_train_one, plan))
    else:
        for item in plan:
            _train_one(item)
    return plan


def run_hallmarks(recipe, seeds=5, controls=3, out="docs", models_dir=None, jobs=2, first_seed=0):
    """Train (or reuse) the models, measure them, write the report; returns the results dict.

    ``recipe`` is a :class:`~topoviewer.training.TrainConfig` (e.g. ``TrainConfig.from_json("sample")``).
    """
    from .hallmarks import measure
    from .io import load

    out = Path(out)
    plan = train_models(recipe, seeds, controls, models_dir or out / "hallmark_models", jobs, first_seed)
    results = {"recipe": recipe.to_json(), "topographic": [], "control": []}
    for _, seed, control, path in plan:
        model = load(path)
        m = measure(model, seed=0)
        m["seed"] = seed
        m["suites"] = beyond_patches(model)
        results["control" if control else "topographic"].append(m)
    text = json.dumps(results, indent=1)
    atomic_write(out / "hallmarks.json", lambda tmp: Path(tmp).write_text(text))
    write_report(results, out)
    return results


def beyond_patches(model, n_random: int = 10) -> dict:
    """Per sheet: the population identity / view / mirror indices on ``face-views`` (invariance suite)
    and the face accuracy of the model's classifier with the sheet's face patch silenced vs `n_random`
    random contiguous lesions of its size (lesion suite), on the localizer."""
    from .suites import run_suite

    inv = run_suite("invariance", model)["sheets"]
    les = run_suite("lesion", model, n_random=n_random, control="region")["sheets"]
    return {name: {**inv[name]["population"],
                   "faces_before": les[name]["categories"]["faces"]["before"],
                   "faces_after": les[name]["categories"]["faces"]["after"],
                   "faces_random": les[name]["categories"]["faces"]["random_mean"],
                   "faces_p": les[name]["categories"]["faces"]["p"], "lesion_units": les[name]["units"],
                   "random_lesions": n_random}
            for name in inv}


def _suite_summary(runs) -> dict:
    """Mean ± SEM over runs of :func:`beyond_patches`' numbers per sheet (runs measured before it: none)."""
    runs = [r["suites"] for r in runs if r.get("suites")]
    if not runs:
        return {}
    out = {}
    for sheet in runs[0]:
        vals = lambda k: [r[sheet][k] for r in runs]  # noqa: E731
        out[sheet] = {k: _mean_sem(vals(k)) for k in ("identity", "view", "mirror", "faces_before", "faces_after",
                                                       "faces_random")}
        # the smallest p that n random lesions allow, 1/(n + 1): the patch lesion costs more than every one
        out[sheet]["lesion_beats_all_runs"] = sum(p is not None and p <= 1 / (1 + n) + 1e-12
                                                  for p, n in zip(vals("faces_p"), vals("random_lesions")))
        out[sheet]["lesion_worse_than_random_runs"] = sum(
            a is not None and r is not None and a < r for a, r in zip(vals("faces_after"), vals("faces_random")))
    return out


def _mean_sem(values):
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def _fmt(mean_sem, pct=False):
    m, s = mean_sem
    if pct:
        return f"{100 * m:.1f} ± {100 * s:.1f} %"
    return f"{m:.3g} ± {s:.2g}"


#: The stimulation protocol whose numbers head the report: the default decay and the paper's outside rule.
MAIN_PROTOCOL = "peak1/paper"


def _paired(a_values, b_values):
    """Paired t-test of a vs b over runs that have both: (t, p, df)."""
    from scipy import stats

    paired = [(a, b) for a, b in zip(a_values, b_values) if a is not None and b is not None]
    t = p = float("nan")
    if len(paired) > 1:
        a, b = np.array(paired).T
        if np.ptp(a - b) > 0:  # identical differences have no spread: no test
            t, p = stats.ttest_rel(a, b)
    return float(t), float(p), len(paired) - 1


def _stim(run, protocol, key):
    return (run["stimulation"].get(protocol) or {}).get(key)


def summarise(results) -> dict:
    """The numbers the report states (also used by tests)."""
    out = {}
    for group in ("topographic", "control"):
        runs = results[group]
        if not runs:
            continue
        near_far = [(r["correlation_near"], r["correlation_far"]) for r in runs]
        stim = {}
        for protocol in runs[0]["stimulation"]:
            ins = [_stim(r, protocol, "inside_delta") for r in runs]
            outs = [_stim(r, protocol, "outside_delta") for r in runs]
            t, p, df = _paired(ins, outs)
            stim[protocol] = {
                "inside_raw": _mean_sem([_stim(r, protocol, "inside_next_patch_mean") for r in runs]),
                "outside_raw": _mean_sem([_stim(r, protocol, "outside_next_patch_mean") for r in runs]),
                "baseline": _mean_sem([_stim(r, protocol, "baseline") for r in runs]),
                "inside_delta": _mean_sem(ins),
                "outside_delta": _mean_sem(outs),
                "inside_gt_outside_runs": sum(a is not None and b is not None and a > b for a, b in zip(ins, outs)),
                "inside_positive_runs": sum(a is not None and a > 0 for a in ins),
                "t": t, "p": p, "df": df,
                "inside_units": [_stim(r, protocol, "inside_units") for r in runs],
                "outside_units": _mean_sem([_stim(r, protocol, "outside_units") for r in runs]),
                "inside_clipped_runs": sum(bool(_stim(r, protocol, "inside_clipped")) for r in runs),
            }
        nulls = [r.get("null", {}).get("p", {}) for r in runs]
        out[group] = {
            "n": len(runs),
            "val_accuracy": _mean_sem([r["val_accuracy"] for r in runs]),
            "fraction_selective": {c: _mean_sem([r["fraction_selective"][c] for r in runs])
                                   for c in runs[0]["fraction_selective"]},
            "fraction_selective_calibrated": {c: _mean_sem([r["fraction_selective_calibrated"][c] for r in runs])
                                              for c in runs[0]["fraction_selective_calibrated"]},
            "calibrated_face_threshold": _mean_sem([r["calibrated_threshold"]["faces"] for r in runs]),
            "face_patch_runs": sum(r["largest_patch_voxels"]["faces"] >= 10 for r in runs),
            "body_patch_runs": sum(r["largest_patch_voxels"]["bodies"] >= 10 for r in runs),
            "face_patch_null95_runs": sum(bool(r["patch_null95"]["faces"]) for r in runs),
            "body_patch_null95_runs": sum(bool(r["patch_null95"]["bodies"]) for r in runs),
            "largest_patch_voxels": {c: _mean_sem([r["largest_patch_voxels"][c] for r in runs])
                                     for c in runs[0]["largest_patch_voxels"]},
            "cluster_strength": {c: _mean_sem([r["cluster_strength"][c] for r in runs])
                                 for c in runs[0]["cluster_strength"]},
            "face_body_distance": _mean_sem([r["face_body_peak_distance_mm"] for r in runs]),
            "random_distance": _mean_sem([r["random_pair_distance_mm"]["mean"] for r in runs]),
            "correlation_near_far": [(float(a), float(b)) for a, b in near_far],
            "near_3x_far_runs": sum(a >= 3 * b for a, b in near_far),
            "peak_face_t": _mean_sem([r.get("peak_voxel_t", {}).get("faces") for r in runs]),
            "neighbour_agreement": [r["neighbour_dprime_agreement"] for r in runs],
            "null_p": {key: [n.get(key) for n in nulls] for key in (nulls[0] if nulls else {})},
            "null_shuffles": runs[0].get("null", {}).get("n_shuffles", 0),
            "stimulation": stim,
            "purity_centre": _mean_sem([_purity(r, 0) for r in runs]),
            "purity_1_2mm": _mean_sem([_purity(r, 1) for r in runs]),
            "purity_3mm": _mean_sem([_purity(r, 3) for r in runs]),
            "purity_1_2mm_spread": [_spread(r, 1) for r in runs],
            "photos": _photo_summary(runs),
            "suites": _suite_summary(runs),
        }
    return out


#: The issue's targets for transfer to photographs, per sheet.
PHOTO_TARGETS = {"face_units_dprime": 0.5, "dprime_gap": 0.4, "patch_ratio": 1.5, "edge_share": 0.45}


def _photo_summary(runs):
    """Per sheet: mean ± SEM of the photo measures and how many runs meet each target."""
    if not runs or "photos" not in runs[0]:
        return {}
    out = {}
    for sheet in runs[0]["photos"]:
        entries = [r["photos"][sheet] for r in runs]
        block = {k: _mean_sem([e.get(k) for e in entries]) for k in (
            "face_units_dprime", "other_units_dprime", "dprime_gap", "patch_ratio", "edge_share",
            "edge_area_share", "fraction_selective")}
        block["per_run"] = {k: [e.get(k) for e in entries] for k in PHOTO_TARGETS}
        met = []
        for e in entries:
            ok = all(e.get(k) is not None for k in PHOTO_TARGETS) and (
                e["face_units_dprime"] >= 0.5 and e["dprime_gap"] >= 0.4 and e["patch_ratio"] >= 1.5
                and e["edge_share"] <= 0.45 and 0.04 <= e["fraction_selective"] <= 0.22)
            met.append(ok)
        block["all_targets_runs"] = int(sum(met))
        out[sheet] = block
    return out


def _spread(run, k):
    spread = (run.get("purity_curve") or {}).get("spread") or []
    return tuple(spread[k]) if k < len(spread) else (None, None)


def _purity(run, k):
    curve = run.get("purity_curve") or {}
    pur = curve.get("purity", [])
    return pur[k] if k < len(pur) and pur[k] is not None else None


def _figures(results, out: Path):
    from matplotlib.figure import Figure

    from .losses import target_correlation

    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    colours = {"topographic": "tab:red", "control": "tab:grey"}
    for group, colour in colours.items():
        runs = results[group]
        if not runs:
            continue
        # purity vs distance
        curves = [r["purity_curve"]["purity"] for r in runs if r.get("purity_curve")]
        n = min(len(c) for c in curves)
        arr = np.array([[np.nan if v is None else v for v in c[:n]] for c in curves], dtype=float)
        d = np.asarray(runs[0]["purity_curve"]["distance_mm"][:n])
        m, s = np.nanmean(arr, 0), np.nanstd(arr, 0, ddof=1) / np.sqrt(np.sum(np.isfinite(arr), 0))
        ax1.plot(d, m, color=colour, label=f"{group} (n={len(runs)})")
        ax1.fill_between(d, m - s, m + s, color=colour, alpha=0.25)
        bands = [r["null"]["purity_band"] for r in runs if (r.get("null") or {}).get("purity_band")]
        if bands and group == "topographic":
            k = min(n, *(len(b["p95"]) for b in bands))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a bin no model reaches stays NaN
                lo, hi = (np.nanmean([[np.nan if v is None else v for v in b[q][:k]] for b in bands], 0)
                          for q in ("p5", "p95"))
            ax1.fill_between(d[:k], lo, hi, color="tab:blue", alpha=0.15, label="spatial null, 5–95 %")
        # correlation vs distance
        cc = np.array([[np.nan if v is None else v for v in r["correlation_curve"]["correlation"]] for r in runs])
        dd = np.asarray(runs[0]["correlation_curve"]["distance_mm"])
        k = min(cc.shape[1], len(dd))
        ax2.plot(dd[:k], np.nanmean(cc[:, :k], 0), color=colour, label=group)
        # stimulation, as Δ from the silent-sheet baseline
        ins = [_stim(r, MAIN_PROTOCOL, "inside_delta") for r in runs]
        outs = [_stim(r, MAIN_PROTOCOL, "outside_delta") for r in runs]
        outs = [np.nan if v is None else v for v in outs]
        x0 = 0 if group == "topographic" else 3
        ax3.bar([x0, x0 + 1], [np.mean(ins), np.nanmean(outs)], color=[colour, "white"], edgecolor=colour)
        for a, b in zip(ins, outs):
            ax3.plot([x0, x0 + 1], [a, b], color="k", lw=0.7, alpha=0.6)
    ref_d = np.linspace(0, 6, 50)
    ax1.plot(ref_d, 0.1 + 0.85 * np.exp(-((ref_d / 1.8) ** 2)), "k--", lw=1, label="monkey MFP shape (qualitative)")
    ax1.set(xlabel="distance from patch centre (mm)", ylabel="face purity", ylim=(0, 1.05), title="Purity")
    ax1.legend(fontsize=7)
    lam = results.get("recipe", {}).get("correlation_length_mm", 1.0)
    ax2.plot(ref_d, target_correlation(ref_d, lam), "k--", lw=1, label=f"target 1/(d/λ+1), λ = {lam:g} mm")
    ax2.set(xlabel="pair distance (mm)", ylabel="response correlation", title="Correlation vs distance")
    ax2.legend(fontsize=7)
    ax3.set_xticks([0, 1, 3, 4], ["in", "out", "in", "out"])
    ax3.axhline(0.0, color="k", lw=0.6)
    ax3.set(ylabel="Δ next-sheet face patch (from baseline)", title="Microstimulation (topo | control)")
    path = images / "hallmarks_curves.png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=150, format="png"))
    return path


def _photo_figures(results, out: Path):
    """The LFW photos that most / least drive the first seed's cIT face patch, and edge crowding."""
    from matplotlib.figure import Figure

    from .stimuli import lfw

    images = out / "images"
    paths = []
    runs = [r for r in results["topographic"] if r.get("photos")]
    if runs:
        first = runs[0]
        sheet = first["sheet"]
        photos = lfw(size=None).images
        most, least = first["photos"][sheet]["most_driving"], first["photos"][sheet]["least_driving"]
        if most:
            fig = Figure(figsize=(8, 2.3), layout="constrained")
            axes = fig.subplots(2, len(most), squeeze=False)
            for row, (idx, label) in enumerate(((most, "most"), (least, "least"))):
                for ax, i in zip(axes[row], idx):
                    ax.imshow(photos[i], cmap="gray", vmin=0, vmax=1)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.set_title("face" if i < 100 else "non-face", fontsize=7)
                axes[row][0].set_ylabel(label, fontsize=8)
            fig.suptitle(f"LFW photos that most / least drive the {sheet} face patch (seed {first.get('seed')})",
                         fontsize=9)
            path = images / "hallmarks_photos.png"
            atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
            paths.append(path)
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    area = None
    for group, colour in (("topographic", "tab:red"), ("control", "tab:grey")):
        profiles = [r["edge_profile"] for r in results[group] if (r.get("edge_profile") or {}).get("share")]
        if not profiles:
            continue
        k = min(len(p["share"]) for p in profiles)
        d = np.asarray(profiles[0]["distance_mm"][:k])
        share = np.array([p["share"][:k] for p in profiles])
        ax.errorbar(d, share.mean(0), yerr=share.std(0, ddof=1) / np.sqrt(len(share)) if len(share) > 1 else None,
                    color=colour, marker="o", ms=3, label=f"{group} face-patch voxels (n={len(profiles)})")
        area = (d, np.asarray(profiles[0]["area_share"][:k]))
    if area is not None:
        ax.plot(*area, "k--", lw=1, label="all voxels (chance)")
    ax.set(xlabel="distance of the voxel from the sheet border (mm)", ylabel="share of voxels",
           title="Edge crowding of the cIT face patch")
    ax.legend(fontsize=7)
    path = images / "hallmarks_edges.png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=150, format="png"))
    paths.append(path)
    return paths


def write_report(results, out) -> Path:
    out = Path(out)
    s = summarise(results)
    fig_path = _figures(results, out)
    photo_paths = _photo_figures(results, out) if any(r.get("photos") for r in results["topographic"]) else []
    topo, ctrl = s.get("topographic", {}), s.get("control", {})
    rec = results["recipe"]
    lines = [
        "# Hallmarks of the face-patch network in the default model",
        "",
        "Reproduces, at small scale, the hallmarks of Lee et al. 2020 (Figs. 3–5) on the procedural localizer.",
        f"Recipe (`sample_data/recipe.json`): `{json.dumps(rec)}`. "
        f"{topo.get('n', 0)} topographic seeds, {ctrl.get('n', 0)} non-topographic controls (same recipe, α = 0).",
        f"Regenerate with: `topoviewer hallmarks --recipe sample_data/recipe.json --seeds {topo.get('n', 0)} "
        f"--controls {ctrl.get('n', 0)} --out docs`.",
        "",
        f"![hallmark curves](images/{fig_path.name})",
        "",
        "| measure (cIT sheet, mean ± SEM) | topographic | control |",
        "|---|---|---|",
    ]

    def row(name, key, pct=False, sub=None):
        def get(g):
            v = g.get(key)
            if v is None:
                return "—"
            if sub is not None:
                v = v[sub]
            return _fmt(v, pct)
        lines.append(f"| {name} | {get(topo)} | {get(ctrl)} |")

    row("validation accuracy", "val_accuracy", pct=True)
    for c in topo.get("fraction_selective", {}):
        row(f"selective units: {c} (d′ > 0.85)", "fraction_selective", pct=True, sub=c)
    row("selective units: faces (calibrated d′ threshold)", "fraction_selective_calibrated", pct=True, sub="faces")
    row("calibrated face d′ threshold (Poisson, gain 1)", "calibrated_face_threshold")

    def runs_row(name, key):
        lines.append(f"| {name} | {topo.get(key, 0)}/{topo.get('n', 0)} runs | {ctrl.get(key, 0)}/{ctrl.get('n', 0)} runs |")

    runs_row("face patch, paper rule (≥ 10 voxels, t > 10)", "face_patch_runs")
    runs_row("face patch, null95 rule (also > null's 95th percentile)", "face_patch_null95_runs")
    runs_row("body patch, paper rule", "body_patch_runs")
    runs_row("body patch, null95 rule", "body_patch_null95_runs")
    row("largest face cluster (voxels)", "largest_patch_voxels", sub="faces")
    row("peak face voxel t", "peak_face_t")
    for c in topo.get("cluster_strength", {}):
        row(f"cluster strength: {c}", "cluster_strength", sub=c)
    row("face–body peak distance (mm)", "face_body_distance")
    row("random point pairs distance (mm)", "random_distance")
    row("purity at the centre (0–1 mm)", "purity_centre")
    row("purity at 1–2 mm", "purity_1_2mm")
    row("purity at 3–4 mm", "purity_3mm")

    def lst(g, key, fmt="{:.2f}"):
        return ", ".join("—" if v is None else fmt.format(v) for v in g.get(key, [])) or "—"

    def pairs(g):
        return ", ".join(f"{a:.2f} / {b:.2f}" for a, b in g.get("correlation_near_far", [])) or "—"

    def spreads(g):
        return ", ".join("—" if lo is None else f"{lo:.2f}–{hi:.2f}" for lo, hi in g.get("purity_1_2mm_spread", []))

    lines += [
        f"| purity at 1–2 mm over tied purest regions (min–max), per seed | {spreads(topo)} | {spreads(ctrl)} |",
        f"| response correlation < 1 mm / 5–6 mm apart, per seed | {pairs(topo)} | {pairs(ctrl)} |",
        f"| near ≥ 3 × far | {topo.get('near_3x_far_runs', 0)}/{topo.get('n', 0)} runs | "
        f"{ctrl.get('near_3x_far_runs', 0)}/{ctrl.get('n', 0)} runs |",
        f"| neighbour agreement of face d′ (r), per seed | {lst(topo, 'neighbour_agreement')} | "
        f"{lst(ctrl, 'neighbour_agreement')} |",
        "",
        f"**Spatial null** ({topo.get('null_shuffles', 0)} position shuffles per model; one-sided permutation "
        f"p, smallest possible {1 / (1 + max(1, topo.get('null_shuffles', 0))):.3f}), per seed:",
        "",
        "| p-value | topographic | control |",
        "|---|---|---|",
    ]
    for key in topo.get("null_p", {}):
        t_vals, c_vals = topo["null_p"][key], ctrl.get("null_p", {}).get(key, [])
        fmt = lambda vals: ", ".join("—" if v is None else f"{v:.3g}" for v in vals) or "—"  # noqa: E731
        lines.append(f"| {key.replace('_', ' ')} | {fmt(t_vals)} | {fmt(c_vals)} |")
    lines += [
        "",
        "**Microstimulation** of the cIT face patch (inside: the patch centre, moved in only if its disc would be "
        "clipped; outside: 8 random sites per model), read out in the aIT face patch, as Δ from the baseline "
        "(the same read-out with cIT silent). Protocols: decay `peak1` (exp(−d²/2σ²)) or `normal_density` "
        "(peak 0.399); outside rule `paper` (centre outside every patch) or `strict` (whole disc clear).",
        "",
        "| protocol | group | baseline | inside raw | outside raw | Δ inside | Δ outside | inside Δ > outside Δ | "
        "paired t (Δ) | inside units (per seed) / outside units |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for protocol in topo.get("stimulation", {}):
        for name, g in (("topographic", topo), ("control", ctrl)):
            st = g.get("stimulation", {}).get(protocol)
            if not st:
                continue
            units = ", ".join(str(u) for u in st["inside_units"])
            lines.append(
                f"| {protocol} | {name} | {_fmt(st['baseline'])} | {_fmt(st['inside_raw'])} | "
                f"{_fmt(st['outside_raw'])} | {_fmt(st['inside_delta'])} | {_fmt(st['outside_delta'])} | "
                f"{st['inside_gt_outside_runs']}/{g['n']} | t({st['df']}) = {st['t']:.2f}, p = {st['p']:.3g} | "
                f"{units} / {st['outside_units'][0]:.0f} |"
            )
    lines.append("")
    if topo.get("photos"):
        lines += [
            "**Real photographs** (scikit-image's LFW subset: 100 faces vs 100 non-face crops; validation only, "
            "never trained on). Face units and the face patch are found on the procedural localizer, then "
            "measured on the photos. Targets: face units' LFW d′ ≥ 0.5 and ≥ 0.4 above the other units'; "
            "patch faces/non-faces ≥ 1.5×; ≤ 45 % of patch voxels in the outer 1 mm ring; 4–22 % selective.",
            "",
            "| sheet · measure (mean ± SEM) | topographic | control |",
            "|---|---|---|",
        ]
        for sheet in topo["photos"]:
            tp, cp = topo["photos"][sheet], ctrl.get("photos", {}).get(sheet, {})
            for key, name in (("face_units_dprime", "face units' LFW d′"), ("other_units_dprime", "other units' LFW d′"),
                              ("dprime_gap", "gap (face − other)"), ("patch_ratio", "patch faces / non-faces"),
                              ("edge_share", "patch voxels in the outer 1 mm ring"),
                              ("edge_area_share", "  (all voxels in that ring)"),
                              ("fraction_selective", "face-selective units")):
                get = lambda g: _fmt(g[key]) if key in g else "—"  # noqa: E731
                lines.append(f"| {sheet} · {name} | {get(tp)} | {get(cp)} |")
            lines.append(f"| {sheet} · runs meeting every photo target | {tp['all_targets_runs']}/{topo['n']} | "
                         f"{cp.get('all_targets_runs', 0)}/{ctrl.get('n', 0)} |")
            per = tp["per_run"]
            lines.append(f"| {sheet} · per seed: face-unit d′ / patch ratio | "
                         + ", ".join(f"{'—' if a is None else f'{a:+.2f}'} / {'—' if b is None else f'{b:.2f}'}"
                                     for a, b in zip(per["face_units_dprime"], per["patch_ratio"])) + " | |")
        lines.append("")
        lines += [f"![{p.stem}](images/{p.name})" for p in photo_paths]
        lines.append("")
    if topo.get("suites"):
        lines += [
            "## Beyond patches: viewpoint invariance and face-patch lesions",
            "",
            "Population indices on `face-views` (25 identities × 9 head orientations; `topoviewer analyze --suite "
            "invariance`): identity = same-identity minus different-identity correlation across views, view = "
            "same-view minus different-view across identities, mirror = mirror views minus other view pairs. "
            "Invariance along the hierarchy shows as identity rising and view falling from cIT (fc6) to aIT (fc7). "
            "Lesions (`--suite lesion`): the face accuracy of the model's own classifier on the localizer with the "
            "sheet's face patch (units within 3 mm of the face d′ peak) silenced, against 10 random contiguous "
            "lesions of the same size (mean over them); the last row counts the runs whose patch lesion leaves a lower "
            "face accuracy than the random lesions' mean, and those whose patch lesion costs more than every random "
            "one (p = 1/11, the smallest p that 10 random lesions allow).",
            "",
            "| sheet · measure (mean ± SEM) | topographic | control |",
            "|---|---|---|",
        ]
        for sheet, tp in topo["suites"].items():
            cp = ctrl.get("suites", {}).get(sheet, {})
            for key, name in (("identity", "identity index"), ("view", "view index"), ("mirror", "mirror index"),
                              ("faces_before", "face accuracy, intact"), ("faces_after", "face accuracy, patch silenced"),
                              ("faces_random", "face accuracy, random lesions")):
                lines.append(f"| {sheet} · {name} | {_fmt(tp[key])} | {_fmt(cp[key]) if key in cp else '—'} |")
            lines.append(f"| {sheet} · runs: patch lesion below the random mean / below every random lesion | "
                         f"{tp['lesion_worse_than_random_runs']}/{topo['n']}, {tp['lesion_beats_all_runs']}/{topo['n']} | "
                         f"{cp.get('lesion_worse_than_random_runs', 0)}/{ctrl.get('n', 0)}, "
                         f"{cp.get('lesion_beats_all_runs', 0)}/{ctrl.get('n', 0)} |")
        lines.append("")
    md = out / "hallmarks.md"
    existing = md.read_text() if md.exists() else ""
    marker = "<!-- discussion -->"
    tail = existing[existing.index(marker):] if marker in existing else f"{marker}\n"
    start, end = EARLY_MARKERS  # the early-sheet section is written on its own (write_early_section): kept
    early = existing[existing.index(start):existing.index(end) + len(end)] + "\n\n" if start in existing else ""
    text = "\n".join(lines) + "\n" + early + tail
    atomic_write(md, lambda tmp: Path(tmp).write_text(text))
    return md



# ---------------------------------------------------------------------------- the early visual sheet
#: The generated "Early visual sheet" section of hallmarks.md lies between these markers.
EARLY_MARKERS = ("<!-- early visual sheet -->", "<!-- /early visual sheet -->")
#: Position shuffles of the orientation preferences per model (the agreement a salt-and-pepper layout gives).
EARLY_SHUFFLES = 20


def measure_early(model, shuffles: int = EARLY_SHUFFLES, seed: int = 0, analysis=None) -> dict:
    """The early visual maps of every sheet on gratings (what ``topoviewer analyze MODEL --stimuli gratings``
    writes: neighbour agreement, |Δθ| by distance, pinwheels, column spacing, pinwheel density, cardinal bias)
    plus the neighbour agreement of the same preferences over ``shuffles`` random permutations of the units.
    ``analysis``: that analysis when it is already at hand (computed otherwise)."""
    from .analysis.tuning import orientation_agreement
    from .pipeline import analyze, model_gratings

    analysis = analyze(model, model_gratings(model), seed=seed) if analysis is None else analysis
    rng = np.random.default_rng(seed)
    out = {"val_accuracy": (model.meta.get("training") or {}).get("val_accuracy"), "sheets": {}}
    for name, maps in analysis.sheets.items():
        block = copy.deepcopy(maps.summary["gratings"])
        theta = maps.early.tuning.orientation_deg
        sheet = model.sheet(name)
        block["orientation"]["shuffled_agreement"] = float(np.mean(
            [orientation_agreement(sheet, rng.permutation(theta)) for _ in range(shuffles)]))
        block["orientation_map"].pop("pinwheels_mm", None)
        out["sheets"][name] = {"units": sheet.n_units, "pixel_mm": maps.early.orientation.grid.pixel_mm, **block}
    return out


def run_early(recipe, seeds=3, controls=2, out="docs", models_dir=None, jobs=2, first_seed=0, name="sample-v1"):
    """Train (or reuse) topographic seeds and α = 0 controls of ``recipe`` (a model with an early sheet), measure
    their orientation maps (:func:`measure_early`), write ``hallmarks_early.json`` and the "Early visual sheet"
    section of ``hallmarks.md`` (:func:`write_early_section`); returns the results dict."""
    from .io import load

    out = Path(out)
    plan = train_models(recipe, seeds, controls, models_dir or out / "hallmark_models" / name, jobs, first_seed)
    results = {"recipe": recipe.to_json(), "name": name, "topographic": [], "control": []}
    for _, seed, control, path in plan:
        m = measure_early(load(path))
        m["seed"] = seed
        results["control" if control else "topographic"].append(m)
    text = json.dumps(results, indent=1)
    atomic_write(out / "hallmarks_early.json", lambda tmp: Path(tmp).write_text(text))
    write_early_section(results, out)
    return results


def _early_value(run, sheet, *keys):
    v = run["sheets"][sheet]
    for k in keys:
        v = v.get(k) if isinstance(v, dict) else None
    return v


def _difference_at(run, sheet, distance):
    """Mean |Δθ| in the distance bin centred at ``distance`` (sheet units; None beyond the curve)."""
    curve = run["sheets"][sheet]["orientation"]["difference_by_distance"]
    d = np.asarray(curve["distance_mm"], float)
    i = int(np.argmin(np.abs(d - distance))) if len(d) else -1
    return curve["mean_difference_deg"][i] if i >= 0 and abs(d[i] - distance) < 1e-6 * max(1.0, distance) else None


def early_summary(results) -> dict:
    """Per group and sheet, mean ± SEM of the early-sheet measures and the per-seed values."""
    out = {}
    for group in ("topographic", "control"):
        runs = results[group]
        if not runs:
            continue
        g = {"n": len(runs), "val_accuracy": _mean_sem([r["val_accuracy"] for r in runs]), "sheets": {}}
        for sheet in runs[0]["sheets"]:
            pixel = runs[0]["sheets"][sheet]["pixel_mm"]
            get = lambda *k: [_early_value(r, sheet, *k) for r in runs]  # noqa: E731
            spacing = get("orientation_map", "column_spacing_mm")
            g["sheets"][sheet] = {
                "units": runs[0]["sheets"][sheet]["units"],
                "pixel_mm": pixel,
                "responsive_units": _mean_sem(get("responsive_units")),
                "mean_osi": _mean_sem(get("orientation", "mean_osi")),
                "agreement": _mean_sem(get("orientation", "neighbour_agreement")),
                "agreement_runs": get("orientation", "neighbour_agreement"),
                "shuffled_agreement": _mean_sem(get("orientation", "shuffled_agreement")),
                "difference": {k: _mean_sem([_difference_at(r, sheet, (k + 0.5) * pixel) for r in runs])
                               for k in (1, 2, 4, 8)},
                "periodic_runs": sum(v is not None for v in spacing),
                "spacing": _mean_sem(spacing),
                "spacing_runs": spacing,
                "pinwheels": _mean_sem(get("orientation_map", "pinwheels")),
                "density": _mean_sem(get("orientation_map", "pinwheel_density")),
                "density_runs": get("orientation_map", "pinwheel_density"),
                "cardinal_bias": _mean_sem(get("orientation", "cardinal_bias", "bias")),
            }
        out[group] = g
    return out


def _early_figure(results, out: Path, models_dir: Path | None = None):
    """|Δθ| vs distance on the early sheet, every run (topographic red, control grey)."""
    from matplotlib.figure import Figure

    sheet = next(iter(results["topographic"][0]["sheets"]))
    fig = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = fig.subplots()
    for group, colour in (("topographic", "tab:red"), ("control", "tab:grey")):
        for i, run in enumerate(results[group]):
            curve = run["sheets"][sheet]["orientation"]["difference_by_distance"]
            y = [np.nan if v is None else v for v in curve["mean_difference_deg"]]
            ax.plot(curve["distance_mm"], y, color=colour, lw=1, marker="o", ms=2,
                    label=f"{group} (n={len(results[group])})" if i == 0 else None)
    ax.axhline(45.0, color="k", ls="--", lw=0.8, label="unrelated preferences (45°)")
    ax.set(xlabel=f"distance on the {sheet} sheet (cells)", ylabel="mean |Δθ| of unit pairs (°)", ylim=(0, 60),
           title=f"Orientation preference vs distance ({sheet})")
    ax.legend(fontsize=7)
    path = out / "images" / "hallmarks_early.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=150, format="png"))
    return path


def write_early_section(results, out) -> Path:
    """Write (or replace) the "Early visual sheet" section of ``out/hallmarks.md``, before its discussion."""
    out = Path(out)
    s = early_summary(results)
    topo, ctrl = s.get("topographic", {}), s.get("control", {})
    fig = _early_figure(results, out)
    name, rec = results.get("name", "sample-v1"), results["recipe"]
    lines = [
        EARLY_MARKERS[0],
        f"## Early visual sheet (`{name}`)",
        "",
        f"Recipe (`topoviewer train --recipe {name}`): `{json.dumps(rec)}`. "
        f"Topographic seeds: {topo.get('n', 0)} (seed 0 is the shipped model); α = 0 controls (same recipe): "
        f"{ctrl.get('n', 0)}. Measured on the achromatic gratings (`topoviewer analyze MODEL --stimuli "
        "gratings`); distances in grid cells (one channel per cell). Agreement: mean cos 2Δθ of units less than "
        "1.5 cells apart (1: same preference, 0: unrelated); shuffled: the same preferences with the units "
        f"permuted ({EARLY_SHUFFLES} permutations). Kaschube et al. 2010 find ≈ π pinwheels per Λ² in animals.",
        f"Regenerate this section alone with: `topoviewer hallmarks --early --recipe {name} --seeds "
        f"{topo.get('n', 0)} --controls {ctrl.get('n', 0)} --out docs`.",
        "",
        f"![orientation difference vs distance](images/{fig.name})",
        "",
        "| sheet · measure (mean ± SEM) | topographic | control |",
        "|---|---|---|",
        f"| validation accuracy | {_fmt(topo['val_accuracy'], pct=True)} | "
        f"{_fmt(ctrl['val_accuracy'], pct=True) if ctrl else '—'} |",
    ]

    def fmt_runs(values, f="{:.2f}"):
        return ", ".join("—" if v is None else f.format(v) for v in values) or "—"

    def fmt(g, key, sub=None):
        v = g.get(key) if sub is None else g.get(key, {}).get(sub)
        if v is None or not np.isfinite(v[0]):
            return "—"
        return f"{v[0]:.0f} ± {v[1]:.2g}" if key in ("responsive_units", "pinwheels") else _fmt(v)

    for sheet, tp in topo["sheets"].items():
        cp = ctrl.get("sheets", {}).get(sheet, {})
        label = f"{sheet} ({tp['units']} units)"
        rows = [("orientation-responsive units", "responsive_units"), ("mean OSI", "mean_osi"),
                ("neighbour agreement", "agreement"), ("neighbour agreement, units shuffled", "shuffled_agreement")]
        for title, key in rows:
            lines.append(f"| {label} · {title} | {fmt(tp, key)} | {fmt(cp, key)} |")
        for k in (k for k in (1, 2, 4, 8) if np.isfinite(tp["difference"][k][0])):  # bins the sheet has
            lines.append(f"| {label} · mean \\|Δθ\\| of pairs {k}–{k + 1} cells apart (°) | {fmt(tp, 'difference', k)} | "
                         f"{fmt(cp, 'difference', k)} |")
        lines.append(f"| {label} · periodic maps (a column spacing Λ) | {tp['periodic_runs']}/{topo['n']} runs | "
                     f"{cp.get('periodic_runs', 0)}/{ctrl.get('n', 0)} runs |")
        for title, key in (("column spacing Λ (cells)", "spacing"), ("pinwheels", "pinwheels"),
                           ("pinwheel density (per Λ²)", "density"), ("cardinal bias", "cardinal_bias")):
            lines.append(f"| {label} · {title} | {fmt(tp, key)} | {fmt(cp, key)} |")
        for title, key in (("neighbour agreement", "agreement_runs"), ("Λ (cells)", "spacing_runs"),
                           ("pinwheel density", "density_runs")):
            lines.append(f"| {label} · per seed: {title} | {fmt_runs(tp[key])} | {fmt_runs(cp.get(key, []))} |")
    lines += ["", EARLY_MARKERS[1], ""]
    md = out / "hallmarks.md"
    existing = md.read_text() if md.exists() else ""
    text = _with_early_section(existing, "\n".join(lines))
    atomic_write(md, lambda tmp: Path(tmp).write_text(text))
    return md


def _with_early_section(text: str, section: str) -> str:
    """``text`` with its early-sheet section replaced by ``section`` (inserted before the discussion if absent)."""
    start, end = EARLY_MARKERS
    if start in text and end in text:
        a, b = text.index(start), text.index(end) + len(end)
        return text[:a] + section.rstrip("\n") + text[b:]
    marker = "<!-- discussion -->"
    at = text.index(marker) if marker in text else len(text)
    return text[:at] + section + "\n" + text[at:]
