"""Training on a CUDA GPU: step time with vs without the spatial loss, bf16 autocast vs float32.

Usage (on a machine with a GPU; CI has none)::

    python benchmarks/gpu_training.py [--json FILE] [--quick]

For each model — the default recipe's ``tdann_small`` (32 px, 2 × 2,048-unit sheets, batch 128) and the
ResNet-18 TDANN that ``topoviewer train --arch resnet`` trains (224 px RGB, eight block sheets of
25,088–200,704 units, batch 256; ``benchmarks/resnet_training.py``'s model) — one training step as
``topoviewer.training`` runs it (forward, cross-entropy, the spatial loss on every sheet, backward,
AdamW) is timed with CUDA events, in float32 and in bf16 autocast with channels-last (what
``precision="auto"`` does on CUDA), with the spatial loss and without it (``loss="none"``, the
bare-torch step). The two alternate in rounds; each figure is the median over rounds, printed as soon
as it is measured. The ResNet's relative losses are set up once (neighbourhoods of every unit on the
CPU's cores, centre weights on the GPU; timed apart) and shared by its float32 and bf16 steps. Also the
end-to-end rate of ``topoviewer.training.train`` on the default recipe (diet generation excluded: the
images/s its progress events report). ``--only resnet18`` runs one part (~1 min on an H100).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from resnet_training import build_losses, resnet18  # noqa: E402
from run import _train_step_fn  # noqa: E402  (benchmarks/run.py: the engine's step, bare)


def time_steps(fns: dict, rounds: int, per_round: int) -> dict:
    for fn in fns.values():  # warm-up: cuDNN autotuning, allocator
        for _ in range(3):
            fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            for _ in range(per_round):
                fn()
            end.record()
            torch.cuda.synchronize()
            times[name].append(start.elapsed_time(end) / per_round)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_model(base, batch, loss_name, rounds, per_round, losses=None):
    """Step times of ``base`` with and without ``loss_name``, float32 and bf16 (``losses``: built once)."""
    g = torch.Generator().manual_seed(1)
    xb = torch.randn(batch, base.in_channels, base.input_size, base.input_size, generator=g).cuda()
    yb = torch.randint(0, len(base.classes) or base.config.get("n_classes", 1000), (batch,), generator=g).cuda()
    out = {"batch": batch, "size": base.input_size, "units": [s.n_units for s in base.sheets], "ms": {}}
    for precision in ("float32", "bf16"):
        fns = {}
        for name in ("none", loss_name):
            m = copy.deepcopy(base).to("cuda")
            x = xb
            if precision == "bf16":
                m.net.to(memory_format=torch.channels_last)
                x = xb.contiguous(memory_format=torch.channels_last)
            fns[f"{precision}/{name}"] = _train_step_fn(m, name, (x, yb), bf16=precision == "bf16",
                                                        losses=None if name == "none" else losses)
        ms = time_steps(fns, rounds, per_round)
        out["ms"].update(ms)
        out[f"{precision}/spatial_ratio"] = ms[f"{precision}/{loss_name}"] / ms[f"{precision}/none"]
        out[f"{precision}/images_per_s"] = batch / ms[f"{precision}/{loss_name}"] * 1e3
        out[f"{precision}/bare_images_per_s"] = batch / ms[f"{precision}/none"] * 1e3
        print(f"  {precision}: bare {ms[f'{precision}/none']:.1f} ms, with {loss_name} {ms[f'{precision}/{loss_name}']:.1f} ms "
              f"({out[f'{precision}/spatial_ratio']:.3f}×, {out[f'{precision}/images_per_s']:.0f} images/s)",
              file=sys.stderr, flush=True)
        del fns
        torch.cuda.empty_cache()
    out["bf16_speedup"] = out["ms"][f"float32/{loss_name}"] / out["ms"][f"bf16/{loss_name}"]
    return out


def bench_resnet18(batch, rounds, per_round):
    """The ResNet-18 TDANN at 224 px: the losses' set-up (timed), then the steps."""
    torch.manual_seed(0)
    base = resnet18(224)
    t0 = time.perf_counter()
    losses, setup_s = build_losses(base, device="cuda")
    print(f"  set-up of the relative losses: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    out = bench_model(base, batch, "relative", rounds, per_round, losses)
    out["setup_s"] = setup_s
    return out


def end_to_end(steps):
    from topoviewer.training import TrainConfig, train

    res = {}
    for precision in ("float32", "auto"):
        cfg = TrainConfig.from_json("sample")
        cfg.steps, cfg.device, cfg.precision, cfg.checkpoint_every = steps, "cuda", precision, 10**6
        t0 = time.perf_counter()
        events = []
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for e in train(cfg, f"{tmp}/m.safetensors"):
                events.append(e)
        rates = [e.images_per_s for e in events[len(events) // 4:]]
        res[precision] = {"images_per_s": statistics.median(rates), "wall_s": time.perf_counter() - t0,
                          "steps": steps}
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", choices=["end_to_end", "tdann_small", "resnet18"], help="run one part")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_training: needs a CUDA GPU", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # torch's GPU default for cuDNN
    from topoviewer.training import TrainConfig

    rounds, per_round = (3, 5) if args.quick else (7, 20)
    recipe = TrainConfig.from_json("sample")
    small = {**recipe.arch_config, "n_classes": 21}
    r = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}

    def tdann_small():
        from topoviewer.families import build

        torch.manual_seed(0)
        return bench_model(build("tdann_small", small), 128, recipe.loss, rounds, per_round)

    parts = (
        ("end_to_end", lambda: end_to_end(200 if args.quick else 600)),
        ("tdann_small", tdann_small),
        ("resnet18", lambda: bench_resnet18(256, 3, 3)),  # ≈ 4 × 12 steps of ≤ 0.3 s after a ≈ 15 s set-up
    )
    for name, fn in parts:
        if args.only and name != args.only:
            continue
        print(f"[{name}]", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        r[name] = fn()
        print(f"[{name}: {time.perf_counter() - t0:.0f} s] {json.dumps(r[name])}", file=sys.stderr, flush=True)
    print(json.dumps(r, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
