"""ResNet-18 TDANN training step vs a bare ResNet-18 step, side by side on the CPU.

Usage::

    .venv/bin/python benchmarks/resnet_training.py                        # 224 px, batch 8 (~5 min on 2 cores)
    .venv/bin/python benchmarks/resnet_training.py --size 64 --batch 16   # ~1 min
    .venv/bin/python benchmarks/resnet_training.py --json r18.json --profile

The model is what ``topoviewer train --arch resnet`` trains from scratch (``families.fresh_classifier``:
a ResNet-18 with the TDANN's retinotopic starting positions on its eight block sheets, every
activation value a unit, and a 10-class head). Two training steps as ``topoviewer.training`` runs them
(forward, cross-entropy, backward, AdamW; ``benchmarks/run.py``'s ``_train_step_fn``):

(a) bare — the same network without a spatial loss: the plain ResNet-18 step;
(b) TDANN — with the relative spatial loss on all eight sheets (one 500-unit neighbourhood per sheet
    and step, centres drawn by the coverage weights).

The set-up of (b)'s losses (every unit's neighbourhood and the centre weights, once per run) is timed
per sheet, apart from the steps. The two steps alternate for ``--rounds`` rounds; the ratio is the
median over rounds of (b) / (a) (target ≤ 1.15×). Also: the loss alone (forward + backward) per sheet,
and with ``--profile`` the torch op table of step (b). The GPU figures: ``benchmarks/gpu_training.py``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import _loss_alone, _train_step_fn, interleaved, paired_ratio, torch_profile  # noqa: E402


def build_losses(model, device=None):
    """The relative loss of every sheet, set up (neighbourhoods and centre weights); seconds per sheet."""
    from topoviewer.losses import spatial_loss

    losses, setup_s = [], {}
    for k, sheet in enumerate(model.sheets):
        t0 = time.perf_counter()
        loss = spatial_loss("relative", sheet)
        if not loss.whole:
            loss.centre_weights(device=device)
        setup_s[sheet.name] = time.perf_counter() - t0
        losses.append((k, loss))
    return losses, setup_s


def resnet18(size, n_classes=10):
    """``topoviewer train --arch resnet``'s model at ``size`` px (seeded)."""
    import torch

    from topoviewer.families import fresh_classifier

    torch.manual_seed(0)
    return fresh_classifier("resnet", {"input_size": size}, [f"c{i}" for i in range(n_classes)])


def bench(size, batch, rounds, profile):
    import torch

    base = resnet18(size)
    g = torch.Generator().manual_seed(1)
    xb = torch.randn(batch, 3, size, size, generator=g)
    yb = torch.randint(0, len(base.classes), (batch,), generator=g)
    losses, setup_s = build_losses(base)
    print(f"set-up of the losses: {sum(setup_s.values()):.1f} s "
          f"({', '.join(f'{k} {v:.1f}' for k, v in setup_s.items())})", file=sys.stderr, flush=True)
    steps = {"bare": _train_step_fn(copy.deepcopy(base), "none", (xb, yb)),
             "tdann": _train_step_fn(copy.deepcopy(base), "relative", (xb, yb), losses=losses)}
    med, times = interleaved(steps, rounds, warmup=1)
    parts, fns = _loss_alone(base, "relative", xb, losses=losses)
    out = {"size": size, "batch": batch, "rounds": rounds, "units": [s.n_units for s in base.sheets],
           "setup_s": setup_s, "bare_ms": med["bare"] * 1e3, "tdann_ms": med["tdann"] * 1e3,
           "ratio": paired_ratio(times, "tdann", "bare"), "ratio_of_minima": min(times["tdann"]) / min(times["bare"]),
           "bare_images_per_s": batch / med["bare"], "tdann_images_per_s": batch / med["tdann"],
           "loss_alone_ms": parts, "loss_alone_share": sum(parts.values()) / (med["bare"] * 1e3)}
    if profile:
        out["profile"] = torch_profile(steps["tdann"], n=2, top=20)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=224, help="input size, px (default 224)")
    p.add_argument("--batch", type=int, default=8, help="images per step (default 8)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds of the two steps (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1: steadier on a shared machine)")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--profile", action="store_true", help="the torch op table of the TDANN step")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    load = os.getloadavg()
    r = bench(args.size, args.batch, args.rounds, args.profile)
    r.update(threads=args.threads, torch=torch.__version__, wall_s=time.perf_counter() - t0,
             load_average_at_start=load, load_average_at_end=os.getloadavg())
    print(f"ResNet-18 at {r['size']} px, batch {r['batch']}, {args.threads} thread(s), {r['rounds']} rounds, "
          f"1-min load {load[0]:.1f} → {r['load_average_at_end'][0]:.1f}")
    print(f"  (a) bare step   {r['bare_ms']:8.0f} ms  ({r['bare_images_per_s']:.1f} images/s)")
    print(f"  (b) TDANN step  {r['tdann_ms']:8.0f} ms  ({r['tdann_images_per_s']:.1f} images/s)")
    print(f"  ratio (b)/(a)   {r['ratio']:.3f}× median of rounds, {r['ratio_of_minima']:.3f}× of the fastest steps "
          f"(target ≤ 1.15×)")
    print(f"  the loss alone  {sum(r['loss_alone_ms'].values()):.0f} ms per step (+{r['loss_alone_share']:.1%}); "
          f"set-up once {sum(r['setup_s'].values()):.1f} s")
    if "profile" in r:
        print(r.pop("profile"))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    print(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
