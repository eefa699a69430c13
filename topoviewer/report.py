"""The hallmark report: train topographic seeds and controls, measure, write markdown.

``topoviewer hallmarks --recipe sample_data/recipe.json --seeds 5 --controls 3 --out docs``
trains every model with the recipe (controls: spatial weight 0), measures each with
:func:`topoviewer.hallmarks.measure` and writes ``docs/hallmarks.md`` plus its figures
and the raw numbers (``docs/hallmarks.json``).
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .io import atomic_write

__all__ = ["run_hallmarks", "write_report"]


def _train_one(args):
    recipe, seed, control, path = args
    import torch

    torch.set_num_threads(1)
    from .model import drain
    from .training import train

    if not Path(path).exists():
        drain(train(recipe.train_config(seed, control=control), path))
    return path


def run_hallmarks(recipe, seeds=5, controls=3, out="docs", models_dir=None, jobs=2, first_seed=0):
    """Train (or reuse) the models, measure them, write the report; returns the results dict."""
    from .hallmarks import measure
    from .io import load

    out = Path(out)
    models_dir = Path(models_dir or out / "hallmark_models")
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
    results = {"recipe": recipe.__dict__, "topographic": [], "control": []}
    for _, seed, control, path in plan:
        m = measure(load(path), seed=0)
        m["seed"] = seed
        results["control" if control else "topographic"].append(m)
    text = json.dumps(results, indent=1)
    atomic_write(out / "hallmarks.json", lambda tmp: Path(tmp).write_text(text))
    write_report(results, out)
    return results


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


def summarise(results) -> dict:
    """The numbers the report states (also used by tests)."""
    from scipy import stats

    out = {}
    for group in ("topographic", "control"):
        runs = results[group]
        if not runs:
            continue
        ins = [r["stimulation"]["inside_next_patch_mean"] for r in runs]
        outs = [r["stimulation"]["outside_next_patch_mean"] for r in runs]
        paired = [(a, b) for a, b in zip(ins, outs) if a is not None and b is not None]
        t = p = float("nan")
        if len(paired) > 1:
            a, b = np.array(paired).T
            if np.any(a != b):
                t, p = stats.ttest_rel(a, b)
        ratio = [a / b if b else float("nan") for a, b in paired]
        near_far = [(r["correlation_near"], r["correlation_far"]) for r in runs]
        out[group] = {
            "n": len(runs),
            "val_accuracy": _mean_sem([r["val_accuracy"] for r in runs]),
            "fraction_selective": {c: _mean_sem([r["fraction_selective"][c] for r in runs])
                                   for c in runs[0]["fraction_selective"]},
            "face_patch_runs": sum(r["largest_patch_voxels"]["faces"] >= 10 for r in runs),
            "body_patch_runs": sum(r["largest_patch_voxels"]["bodies"] >= 10 for r in runs),
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
            "stim_inside": _mean_sem(ins),
            "stim_outside": _mean_sem(outs),
            "stim_ratio": [float(x) for x in ratio],
            "stim_t": float(t), "stim_p": float(p), "stim_df": len(paired) - 1,
            "purity_centre": _mean_sem([_purity(r, 0) for r in runs]),
            "purity_3mm": _mean_sem([_purity(r, 3) for r in runs]),
        }
    return out


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
        # correlation vs distance
        cc = np.array([[np.nan if v is None else v for v in r["correlation_curve"]["correlation"]] for r in runs])
        dd = np.asarray(runs[0]["correlation_curve"]["distance_mm"])
        k = min(cc.shape[1], len(dd))
        ax2.plot(dd[:k], np.nanmean(cc[:, :k], 0), color=colour, label=group)
        # stimulation
        ins = [r["stimulation"]["inside_next_patch_mean"] for r in runs]
        outs = [r["stimulation"]["outside_next_patch_mean"] or np.nan for r in runs]
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
    ax3.set(ylabel="next-sheet face-patch activation", title="Microstimulation (topo | control)")
    path = images / "hallmarks_curves.png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=150, format="png"))
    return path


def write_report(results, out) -> Path:
    out = Path(out)
    s = summarise(results)
    fig_path = _figures(results, out)
    topo, ctrl = s.get("topographic", {}), s.get("control", {})
    rec = results["recipe"]
    lines = [
        "# Hallmarks of the face-patch network in the default model",
        "",
        "Reproduces, at small scale, the hallmarks of Lee et al. 2020 (Figs. 3–5) on the procedural localizer.",
        f"Recipe (`sample_data/recipe.json`): `{json.dumps(rec)}`. "
        f"{topo.get('n', 0)} topographic seeds, {ctrl.get('n', 0)} non-topographic controls (same recipe, α = 0).",
        "Regenerate with: `topoviewer hallmarks --recipe sample_data/recipe.json --seeds 5 --controls 3 --out docs`.",
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
    lines.append(f"| face patch (≥ 10 voxels, t > 10) | {topo.get('face_patch_runs', 0)}/{topo.get('n', 0)} runs | "
                 f"{ctrl.get('face_patch_runs', 0)}/{ctrl.get('n', 0)} runs |")
    lines.append(f"| body patch (≥ 10 voxels, t > 10) | {topo.get('body_patch_runs', 0)}/{topo.get('n', 0)} runs | "
                 f"{ctrl.get('body_patch_runs', 0)}/{ctrl.get('n', 0)} runs |")
    row("largest face cluster (voxels)", "largest_patch_voxels", sub="faces")
    row("peak face voxel t", "peak_face_t")
    for c in topo.get("cluster_strength", {}):
        row(f"cluster strength: {c}", "cluster_strength", sub=c)
    row("face–body peak distance (mm)", "face_body_distance")
    row("random point pairs distance (mm)", "random_distance")
    row("purity at the centre (0–1 mm)", "purity_centre")
    row("purity at 3–4 mm", "purity_3mm")
    row("microstim. inside → next face patch", "stim_inside")
    row("microstim. outside → next face patch", "stim_outside")

    def lst(g, key, fmt="{:.2f}"):
        return ", ".join(fmt.format(v) for v in g.get(key, [])) or "—"

    def pairs(g):
        return ", ".join(f"{a:.2f} / {b:.2f}" for a, b in g.get("correlation_near_far", [])) or "—"

    lines += [
        f"| response correlation < 1 mm / 5–6 mm apart, per seed | {pairs(topo)} | {pairs(ctrl)} |",
        f"| near ≥ 3 × far | {topo.get('near_3x_far_runs', 0)}/{topo.get('n', 0)} runs | "
        f"{ctrl.get('near_3x_far_runs', 0)}/{ctrl.get('n', 0)} runs |",
        f"| neighbour agreement of face d′ (r), per seed | {lst(topo, 'neighbour_agreement')} | "
        f"{lst(ctrl, 'neighbour_agreement')} |",
        f"| inside / outside stimulation ratio, per seed | {lst(topo, 'stim_ratio')} | {lst(ctrl, 'stim_ratio')} |",
        f"| paired t-test inside vs outside | t({topo.get('stim_df', 0)}) = {topo.get('stim_t', float('nan')):.2f}, "
        f"p = {topo.get('stim_p', float('nan')):.3g} | t({ctrl.get('stim_df', 0)}) = "
        f"{ctrl.get('stim_t', float('nan')):.2f}, p = {ctrl.get('stim_p', float('nan')):.3g} |",
        "",
    ]
    md = out / "hallmarks.md"
    existing = md.read_text() if md.exists() else ""
    marker = "<!-- discussion -->"
    tail = existing[existing.index(marker):] if marker in existing else f"{marker}\n"
    text = "\n".join(lines) + "\n" + tail
    atomic_write(md, lambda tmp: Path(tmp).write_text(text))
    return md

