"""topoviewer performance suite: every number measured side by side in one run, as ratios.

Usage::

    .venv/bin/python benchmarks/run.py            # full run (a few minutes on 2 CPU cores)
    .venv/bin/python benchmarks/run.py --quick    # ≤ 60 s, fewer repeats
    .venv/bin/python benchmarks/run.py --json bench.json --threads 2 --profile

What is measured (medians of repeats after warm-up, ``time.perf_counter``):

1. click → propagated map: ``Stimulator.stimulate(site)`` + ``Sheet.rasterise`` of the
   propagated next-sheet map, vs the bare torch forward of the next stage
   (``model.net.stage(1, x)`` on a (1, N) tensor under ``inference_mode``).
2. analysis throughput: images/s of ``model.responses`` over the localizer vs the bare
   forward ``model.net(x)`` over the already preprocessed tensor (same batch size).
3. ``Sheet.voxelise`` of 1,000 images: first call (builds the sparse weights) and cached.
4. one training step (forward + backward + AdamW step, batch 128) with each spatial loss
   vs the same model without one: absolute / relative on tdann_small, TopoLoss on
   toponet_small. The variants run interleaved, round-robin, so drift hits all alike.
5. our TopoLoss vs the ``topoloss`` 0.0.2 package on the same weights: value difference
   and time ratio (loss + backward).
6. the spatial null: ``spatial_null`` with 100 position shuffles of the first sheet on the
   default localizer (target ≤ 10 s on one core), vs the plain way — the ordinary per-sheet
   analysis (``sheet_maps``) rerun on shuffled sheets — timed per shuffle.

The table goes to stdout, then the JSON (also written to ``--json FILE``). ``--profile``
adds a cProfile / torch-profiler breakdown of every target that fails.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import json
import math
import os
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

TARGETS = {
    "stimulate_ms": ("click → propagated map", "≤ 20 ms"),
    "analysis_ratio": ("analysis / bare forward throughput", "≥ 0.8×"),
    "absolute_ratio": ("train step, absolute / none", "≤ 1.25×"),
    "relative_ratio": ("train step, relative / none", "≤ 1.25×"),
    "topoloss_ratio": ("train step, TopoLoss / none", "≤ 1.05×"),
    "null_s": ("spatial null, 100 shuffles of a sheet", "≤ 10 s"),
}


# ---------------------------------------------------------------------- timing helpers
def timeit(fn, repeats, warmup=2):
    """Median and all times (s) of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def interleaved(fns: dict, repeats, warmup=2):
    """Round-robin timing of several callables: {name: median seconds}."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}, times


def paired_ratio(times, name, base):
    """Median over rounds of ``times[name][i] / times[base][i]``: robust to slow drift in machine load."""
    return statistics.median(a / b for a, b in zip(times[name], times[base]))


def cprofile(fn, n=20, top=12) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        fn()
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).strip_dirs().sort_stats("cumulative").print_stats(top)
    return s.getvalue()


def torch_profile(fn, n=5, top=15) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n):
            fn()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


# ---------------------------------------------------------------------- the model
def default_model():
    """The shipped sample model if present, else an untrained tdann_small (seeded)."""
    import torch

    import topoviewer
    from topoviewer.families import build

    sample = ROOT / "sample_data" / "default.safetensors"
    if sample.exists():
        return topoviewer.load("sample"), f"sample ({sample.name}, trained)"
    torch.manual_seed(0)
    return build("tdann_small"), "tdann_small, untrained (sample_data/default.safetensors absent)"


# ---------------------------------------------------------------------- 1. stimulation
def bench_stimulation(model, stimuli, repeats, profile):
    import torch

    from topoviewer.pipeline import Stimulator

    t0 = time.perf_counter()
    stim = Stimulator(model, model.sheet_names[0], stimuli)
    setup_s = time.perf_counter() - t0
    sheet, nxt = stim.sheet, stim.next_sheet
    rng = np.random.default_rng(0)
    (x0, y0), (w, h) = sheet.origin_mm, sheet.extent_mm
    sites = [(x0 + w * u, y0 + h * v) for u, v in rng.uniform(0.1, 0.9, size=(64, 2))]
    it = iter(range(10**9))

    def click():
        site = sites[next(it) % len(sites)]
        out = stim.stimulate(site)
        nxt.rasterise(out.propagated)

    k = model.sheet_index(stim.layer)
    x = torch.from_numpy(stim.max_activation.astype(np.float32)[None]).to(model.device)
    x = model._from_units(k, x)

    def bare():
        with torch.inference_mode():
            model.net.stage(k + 1, x)

    act = stim.stimulate(sites[0]).propagated

    def pattern():
        from topoviewer.analysis import stimulation_pattern

        stimulation_pattern(sheet, sites[1], stim.max_activation)

    def propagate():
        model.propagate(stim.layer, stim.max_activation, to=stim.next_layer)

    def raster():
        nxt.rasterise(act)

    med, times = interleaved({"click": click, "bare": bare, "pattern": pattern, "propagate": propagate,
                              "rasterise": raster}, repeats, warmup=3)
    res = {
        "layer": stim.layer, "next_layer": stim.next_layer, "units": sheet.n_units, "next_units": nxt.n_units,
        "setup_s": setup_s, "stimulate_ms": med["click"] * 1e3, "bare_forward_ms": med["bare"] * 1e3,
        "ratio": paired_ratio(times, "click", "bare"),
        "breakdown_ms": {"pattern": med["pattern"] * 1e3, "propagate": med["propagate"] * 1e3,
                         "rasterise": med["rasterise"] * 1e3},
        "rasterise_shape": list(nxt.rasterise(act).shape),
    }
    if profile or res["stimulate_ms"] > 20:
        res["profile"] = cprofile(click, n=max(10, repeats))
    return res


# ---------------------------------------------------------------------- 2. analysis throughput
def bench_analysis(model, stimuli, repeats, batch_size, profile):
    import torch

    images = stimuli.images
    x = model.preprocess(images)

    def ours():
        model.responses(images, batch_size=batch_size)

    def bare():
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                model.net(x[i : i + batch_size])

    med, times = interleaved({"ours": ours, "bare": bare}, repeats, warmup=2)
    n = len(images)
    res = {
        "images": n, "batch_size": batch_size, "image_size": list(np.shape(images)[1:]),
        "responses_img_s": n / med["ours"], "bare_img_s": n / med["bare"],
        "ratio": paired_ratio(times, "bare", "ours"),  # throughput ratio = inverse time ratio
    }
    if profile or res["ratio"] < 0.8:
        res["profile"] = cprofile(ours, n=2)
    return res


# ---------------------------------------------------------------------- 6. spatial null
def bench_null(model, n_shuffles=100, n_plain=5):
    from topoviewer.analysis import spatial_null
    from topoviewer.pipeline import default_stimuli, sheet_maps
    from topoviewer.sheet import Sheet

    stimuli = default_stimuli(model)
    sheet = model.sheets[0]
    r = model.responses(stimuli.images, [sheet.name])[sheet.name]
    args = (r, stimuli.labels, stimuli.categories)
    spatial_null(sheet, *args, n_shuffles=2)  # warm the voxel weights
    t0 = time.perf_counter()
    spatial_null(sheet, *args, n_shuffles=n_shuffles)
    ours = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(n_plain):  # the plain way: a fresh sheet and the whole analysis per shuffle
        shuffled = Sheet(sheet.name, sheet.positions[rng.permutation(sheet.n_units)], sheet.extent_mm)
        sheet_maps(shuffled, *args)
    plain = (time.perf_counter() - t0) / n_plain
    return {"sheet": sheet.name, "units": sheet.n_units, "images": len(r), "shuffles": n_shuffles,
            "null_s": ours, "per_shuffle_ms": 1e3 * ours / n_shuffles, "plain_per_shuffle_ms": 1e3 * plain,
            "ratio": plain / (ours / n_shuffles)}


# ---------------------------------------------------------------------- 3. voxelise
def bench_voxelise(model, repeats, n_images=1000):
    from topoviewer.sheet import Sheet

    sheet = model.sheets[0]
    values = np.random.default_rng(0).random((n_images, sheet.n_units), dtype=np.float32)
    fresh = Sheet(sheet.name, sheet.positions, sheet.extent_mm, sheet.origin_mm, unit=sheet.unit,
                  grid_shape=sheet.grid_shape)
    t0 = time.perf_counter()
    out = fresh.voxelise(values)
    cold = time.perf_counter() - t0
    warm, _ = timeit(lambda: fresh.voxelise(values), repeats, warmup=1)
    return {"sheet": sheet.name, "units": sheet.n_units, "images": n_images, "voxel_grid": list(out.shape[1:]),
            "first_call_s": cold, "cached_s": warm, "images_per_s": n_images / warm}


# ---------------------------------------------------------------------- 4. training step
def _train_step_fn(model, loss_name, batch, lr=1e-3, weight=None, generator_seed=0, bf16=False, losses=None):
    """One step of topoviewer.training.train's inner loop (same calls, same order); ``bf16``: the forward
    pass in CUDA bf16 autocast, losses in float32 (what ``precision="auto"`` does on a GPU). ``losses``:
    ``[(k, SpatialLoss)]`` already built (and set up) for these sheets, shared between variants."""
    import contextlib

    import torch
    import torch.nn.functional as F

    from topoviewer.losses import spatial_loss
    from topoviewer.training import DEFAULT_WEIGHT

    xb, yb = batch
    if losses is None:
        losses = [] if loss_name == "none" else [(k, spatial_loss(loss_name, s)) for k, s in enumerate(model.sheets)]
    w = DEFAULT_WEIGHT[loss_name] if weight is None else weight
    opt = torch.optim.AdamW(model.net.parameters(), lr=lr, weight_decay=1e-4)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(generator_seed)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def step():
        model.net.train()
        with autocast():
            logits, acts = model.net(xb)
        task = F.cross_entropy(logits.float(), yb)
        spatial = torch.zeros((), device=xb.device)
        for k, loss in losses:
            if loss.needs == "responses":
                target, units = loss.select(model.units(k, acts[k]), generator=gen)
                spatial = spatial + loss.evaluate(target.float(), units)
            else:
                spatial = spatial + loss(model.net.sheet_weight(k), generator=gen)
        if loss_name == "topoloss" and losses:
            spatial = spatial / len(losses)
        total = task + w * spatial
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        return float(total.detach())  # the engine reads the losses back every step too

    return step


def bench_training(repeats, batch_size, profile):
    import torch

    from topoviewer.families import build

    res = {}
    for arch, names in (("tdann_small", ("none", "absolute", "relative")), ("toponet_small", ("none", "topoloss"))):
        torch.manual_seed(0)
        base = build(arch)
        g = torch.Generator().manual_seed(1)
        xb = torch.randn(batch_size, base.in_channels, base.input_size, base.input_size, generator=g)
        yb = torch.randint(0, base.config["n_classes"], (batch_size,), generator=g)
        steps = {}
        for name in names:
            m = copy.deepcopy(base)
            steps[name] = _train_step_fn(m, name, (xb, yb))
        med, times = interleaved(steps, repeats, warmup=2)
        for name in names:
            key = f"{arch}/{name}"
            res[key] = {"ms": med[name] * 1e3, "min_ms": min(times[name]) * 1e3,
                        "ratio": paired_ratio(times, name, "none"), "ratio_of_medians": med[name] / med["none"],
                        "ratio_of_minima": min(times[name]) / min(times["none"]),
                        "units": [s.n_units for s in base.sheets]}
            if name == "none":
                continue
            parts, fns = _loss_alone(base, name, xb)
            res[key]["loss_alone_ms"] = parts
            res[key]["loss_alone_share"] = sum(parts.values()) / res[f"{arch}/none"]["ms"]
            target = {"absolute": 1.25, "relative": 1.25, "topoloss": 1.05}[name]
            if profile or res[key]["ratio"] > target:
                res[key]["profile"] = _profile_losses(fns)
    return res


def _loss_alone(model, name, xb, losses=None):
    """The spatial loss's own forward+backward per training step (all sheets), as callables and ms;
    ``losses``: ``[(k, SpatialLoss)]`` already built for the sheets."""
    import torch

    from topoviewer.losses import spatial_loss

    model = copy.deepcopy(model)
    model.net.train()
    _, acts = model.net(xb)
    parts, fns = {}, []
    built = dict(losses or [])
    for k, s in enumerate(model.sheets):
        loss = built.get(k) or spatial_loss(name, s)
        gen = torch.Generator().manual_seed(0)
        if loss.needs == "responses":
            target = model.units(k, acts[k]).detach().requires_grad_(True)
        else:
            target = model.net.sheet_weight(k)

        def f(loss=loss, target=target, gen=gen):
            loss(target, generator=gen).backward()

        parts[s.name] = timeit(f, 10, warmup=2)[0] * 1e3
        fns.append(f)
    return parts, fns


def _profile_losses(fns):
    """Torch op table of the spatial loss alone (forward+backward, 5 steps)."""
    return torch_profile(lambda: [f() for f in fns], n=5, top=14)


# ---------------------------------------------------------------------- 5. TopoLoss vs the package
def bench_topoloss_peer(repeats):
    import torch

    try:
        from topoloss import LaplacianPyramid, TopoLoss
    except ImportError:
        return {"skipped": "the topoloss package is not installed (.venv/bin/pip install topoloss==0.0.2)"}
    from topoviewer.families import build
    from topoviewer.losses import spatial_loss

    torch.manual_seed(0)
    model = build("toponet_small")
    net = model.net
    layers = [net.sheet_weight(k) for k in range(len(model.sheets))]
    modules = [net.conv3[0], net.conv4[0]]
    factor = 3.0
    peer = TopoLoss(losses=[LaplacianPyramid.from_layer(model=net, layer=m, factor_h=factor, factor_w=factor)
                            for m in modules])
    ours_losses = [spatial_loss("topoloss", s, factor=factor) for s in model.sheets]

    def ours():
        return sum(loss(w) for loss, w in zip(ours_losses, layers)) / len(layers)

    def theirs():
        return peer.compute(model=net)

    v_ours, v_theirs = ours().item(), theirs().item()
    g_ours = torch.autograd.grad(ours(), layers)
    g_theirs = torch.autograd.grad(theirs(), layers)
    grad_diff = max(float((a - b).abs().max()) for a, b in zip(g_ours, g_theirs))

    def run(fn):
        def f():
            net.zero_grad(set_to_none=True)
            fn().backward()
        return f

    med, times = interleaved({"ours": run(ours), "theirs": run(theirs)}, repeats, warmup=5)
    return {"layers": {s.name: list(s.grid_shape) for s in model.sheets}, "factor": factor,
            "ours": v_ours, "theirs": v_theirs, "abs_diff": abs(v_ours - v_theirs), "max_grad_diff": grad_diff,
            "ours_ms": med["ours"] * 1e3, "theirs_ms": med["theirs"] * 1e3,
            "ratio": paired_ratio(times, "ours", "theirs")}


# ---------------------------------------------------------------------- report
def environment(threads, model_desc):
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        peer = version("topoloss")
    except PackageNotFoundError:
        peer = None
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"load_average_at_start": load, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__,
            "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": threads, "topoloss": peer,
            "model": model_desc}


def verdicts(r):
    tr = r["training"]
    values = {
        "stimulate_ms": r["stimulation"]["stimulate_ms"],
        "analysis_ratio": r["analysis"]["ratio"],
        "absolute_ratio": tr["tdann_small/absolute"]["ratio"],
        "relative_ratio": tr["tdann_small/relative"]["ratio"],
        "topoloss_ratio": tr["toponet_small/topoloss"]["ratio"],
        "null_s": r["null"]["null_s"],
    }
    limits = {"stimulate_ms": ("<=", 20.0), "analysis_ratio": (">=", 0.8), "absolute_ratio": ("<=", 1.25),
              "relative_ratio": ("<=", 1.25), "topoloss_ratio": ("<=", 1.05), "null_s": ("<=", 10.0)}
    out = {}
    for key, v in values.items():
        op, lim = limits[key]
        out[key] = {"value": v, "target": f"{op} {lim:g}", "pass": bool(v <= lim if op == "<=" else v >= lim)}
    return out


def table(r) -> str:
    s, a, v, t, p = r["stimulation"], r["analysis"], r["voxelise"], r["training"], r["topoloss_peer"]
    rows = [
        ("1 click → propagated map", f"{s['stimulate_ms']:.2f} ms",
         f"bare stage({s['next_layer']}) {s['bare_forward_ms']:.3f} ms", f"{s['ratio']:.1f}×"),
        ("  of which pattern / propagate / rasterise",
         " / ".join(f"{s['breakdown_ms'][k]:.2f}" for k in ("pattern", "propagate", "rasterise")) + " ms", "", ""),
        ("  Stimulator setup (once per layer)", f"{s['setup_s']:.2f} s", "", ""),
        ("2 analysis throughput", f"{a['responses_img_s']:.0f} img/s", f"bare net(x) {a['bare_img_s']:.0f} img/s",
         f"{a['ratio']:.2f}×"),
        (f"3 voxelise {v['images']} images ({v['units']} units → {v['voxel_grid'][0]}×{v['voxel_grid'][1]})",
         f"{v['cached_s'] * 1e3:.1f} ms", f"first call {v['first_call_s'] * 1e3:.1f} ms", ""),
    ]
    for arch, names in (("tdann_small", ("absolute", "relative")), ("toponet_small", ("topoloss",))):
        none = t[f"{arch}/none"]["ms"]
        for n in names:
            e = t[f"{arch}/{n}"]
            rows.append((f"4 train step {arch} + {n} (batch {r['config']['batch_size']})", f"{e['ms']:.1f} ms",
                         f"no spatial loss {none:.1f} ms", f"{e['ratio']:.3f}×"))
            rows.append(("  fastest step of each (load-robust)", f"{e['min_ms']:.1f} ms",
                         f"{t[f'{arch}/none']['min_ms']:.1f} ms", f"{e['ratio_of_minima']:.3f}×"))
            rows.append(("  the loss alone, forward+backward", f"{sum(e['loss_alone_ms'].values()):.1f} ms",
                         "", f"+{e['loss_alone_share']:.1%}"))
    if "skipped" in p:
        rows.append(("5 TopoLoss vs topoloss 0.0.2", "skipped", p["skipped"], ""))
    else:
        rows.append(("5 TopoLoss vs topoloss 0.0.2 (loss+backward)", f"{p['ours_ms']:.3f} ms",
                     f"package {p['theirs_ms']:.3f} ms", f"{p['ratio']:.2f}×"))
        rows.append(("  value |ours − theirs| / max |Δgrad|", f"{p['abs_diff']:.1e}", f"{p['max_grad_diff']:.1e}", ""))
    n = r["null"]
    rows.append((f"6 spatial null, {n['shuffles']} shuffles ({n['units']} units, {n['images']} images)",
                 f"{n['null_s']:.2f} s", f"plain re-analysis {n['plain_per_shuffle_ms']:.0f} ms/shuffle",
                 f"{n['ratio']:.1f}× faster"))
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    head = ("benchmark", "topoviewer", "baseline", "ratio")
    w = [max(wi, len(hi)) for wi, hi in zip(w, head)]
    lines = ["  ".join(h.ljust(wi) for h, wi in zip(head, w)), "  ".join("-" * wi for wi in w)]
    lines += ["  ".join(c.ljust(wi) for c, wi in zip(row, w)) for row in rows]
    lines.append("")
    lines.append("targets:")
    for key, vd in r["targets"].items():
        lines.append(f"  {'PASS' if vd['pass'] else 'FAIL'}  {TARGETS[key][0]}: {vd['value']:.3g} (target {vd['target']})")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats and images: ≤ 60 s")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: all CPU cores)")
    p.add_argument("--profile", action="store_true", help="print profiles of every benchmark, not only failures")
    args = p.parse_args(argv)

    import torch

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    t_start = time.perf_counter()
    from topoviewer.stimuli import localizer

    model, model_desc = default_model()
    quick = args.quick
    cfg = {
        "quick": quick, "batch_size": 128, "analysis_batch": 256,
        "per_category": 32 if quick else 64, "stim_repeats": 30 if quick else 200,
        "analysis_repeats": 9 if quick else 15, "voxel_repeats": 3 if quick else 10,
        "train_repeats": 5 if quick else 40, "peer_repeats": 30 if quick else 150,
    }
    stimuli = localizer(size=model.input_size, per_category=cfg["per_category"], seed=1234)
    cfg["stimuli"] = f"{stimuli.name}: {len(stimuli.labels)} images, {len(stimuli.categories)} categories"
    results = {"environment": environment(threads, model_desc), "config": cfg}
    steps = [
        ("stimulation", lambda: bench_stimulation(model, stimuli, cfg["stim_repeats"], args.profile)),
        ("analysis", lambda: bench_analysis(model, stimuli, cfg["analysis_repeats"], cfg["analysis_batch"],
                                            args.profile)),
        ("voxelise", lambda: bench_voxelise(model, cfg["voxel_repeats"])),
        ("training", lambda: bench_training(cfg["train_repeats"], cfg["batch_size"], args.profile)),
        ("topoloss_peer", lambda: bench_topoloss_peer(cfg["peer_repeats"])),
        ("null", lambda: bench_null(model)),
    ]
    for name, fn in steps:
        t0 = time.perf_counter()
        results[name] = fn()
        print(f"[{name}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)
    results["targets"] = verdicts(results)
    results["total_s"] = time.perf_counter() - t_start
    results["environment"]["load_average_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    env = results["environment"]
    print(f"topoviewer benchmarks — {env['model']}")
    print(f"torch {env['torch']}, {env['torch_threads']} thread(s) on {env['cpu_count']} × {env['cpu']}; "
          f"{cfg['stimuli']}; {'quick' if quick else 'full'} run, {results['total_s']:.0f} s")
    load = env.get("load_average_at_end")
    if load and load[0] > threads:
        print(f"WARNING: the machine was busy (1-min load {load[0]:.1f} > {threads} threads): timings are noisy"
              + ("; with several threads, OpenMP waits on descheduled workers — try --threads 1" if threads > 1 else ""))
    print()
    print(table(results))
    profiles = _collect_profiles(results)
    for title, text in profiles:
        print(f"\n--- profile: {title} ---\n{text}")
    slim = _without_profiles(results)
    if args.json:
        Path(args.json).write_text(json.dumps(slim, indent=2))
        print(f"\nwrote {args.json}")
    print("\n" + json.dumps(slim, indent=2))
    return 0


def _collect_profiles(r):
    out = []
    if "profile" in r["stimulation"]:
        out.append(("click → propagated map (cProfile, cumulative)", r["stimulation"]["profile"]))
    if "profile" in r["analysis"]:
        out.append(("analysis responses (cProfile, cumulative)", r["analysis"]["profile"]))
    for key, e in r["training"].items():
        if "profile" in e:
            parts = ", ".join(f"{k} {v:.2f} ms" for k, v in e["loss_alone_ms"].items())
            text = (f"spatial loss forward+backward alone, per sheet: {parts} "
                    f"(= {e['loss_alone_share']:.1%} of a step without it)\n"
                    f"torch ops of the spatial loss alone (forward+backward, 5 steps):\n{e['profile']}")
            out.append((f"train step {key}", text))
    return out


def _without_profiles(obj):
    if isinstance(obj, dict):
        return {k: _without_profiles(v) for k, v in obj.items() if k not in ("profile",)}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


if __name__ == "__main__":
    sys.exit(main())
