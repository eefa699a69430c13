"""Training on image files: the loader's throughput and the cost of data-parallel processes, side by side.

Usage::

    .venv/bin/python benchmarks/train_data.py            # ~2 min on 2 CPU cores
    .venv/bin/python benchmarks/train_data.py --quick

1. loader images/s: topoviewer's training loader (``topoviewer.data``: ``load_image`` → random square
   crop + flip → ``square_input`` to 224 px RGB, batches of 32) vs a bare PIL loop (open, convert to
   RGB, crop, ``resize`` BILINEAR to 224 × 224, uint8 array) in a ``DataLoader`` with the same
   workers and batches, on generated 500 × 375 JPEGs (ImageNet's typical size). Rounds alternate;
   the ratio is the median over rounds (target ≥ 0.8×).
2. data-parallel overhead on CPU: time per step of ``topoviewer train`` on 2 gloo processes vs
   1 process at the same per-process batch (tdann_small, 64 px, absolute loss, all-gathered),
   from the difference of a long and a short run (start-up excluded).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class BarePIL:
    """The baseline: PIL decode + random square crop + bilinear resize, nothing else."""

    def __init__(self, files, size):
        self.files, self.size = files, size

    def __len__(self):
        return len(self.files)

    def __getitem__(self, item):
        import torch
        from PIL import Image

        index, seed = item
        rng = np.random.default_rng(list(seed))
        with Image.open(self.files[index]) as img:
            img = img.convert("RGB")
            w, h = img.size
            side = min(h, w, max(1, round(math.sqrt(h * w * rng.uniform(0.08, 1.0)))))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            img = img.crop((left, top, left + side, top + side)).resize((self.size, self.size), Image.BILINEAR)
            return torch.from_numpy(np.asarray(img).copy()), 0  # (image, label) batches, as the training loader


def make_images(root: Path, n: int) -> list:
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(n):
        d = root / f"class{k % 4}"
        d.mkdir(exist_ok=True)
        base = rng.uniform(0, 255, (47, 63, 3)).astype(np.uint8)
        Image.fromarray(base).resize((500, 375), Image.BICUBIC).save(d / f"{k}.jpg", quality=90)
    return sorted(str(p) for p in root.rglob("*.jpg"))


def bench_loader(root: Path, n_images: int, batches: int, workers: int, rounds: int) -> dict:
    from torch.utils.data import DataLoader

    from topoviewer.data import ImageDataset, StepBatches, loader, read_image_list

    images = read_image_list(root)
    ours = ImageDataset(images, np.arange(len(images)), 224, 3)
    bare = BarePIL(images.files, 224)
    times = {"ours": [], "bare": []}
    for r in range(rounds):
        for name in ("ours", "bare"):
            sampler = StepBatches(len(images), 32, seed=r, start=0, stop=batches)
            it = (loader(ours, sampler, workers) if name == "ours"
                  else DataLoader(bare, batch_sampler=sampler, num_workers=workers, prefetch_factor=4 if workers else None))
            t0 = time.perf_counter()
            n = sum(len(b[0]) for b in it)
            times[name].append(n / (time.perf_counter() - t0))
    ratio = statistics.median(o / b for o, b in zip(times["ours"], times["bare"]))
    return {"images": n_images, "batch": 32, "batches": batches, "workers": workers,
            "ours_images_per_s": statistics.median(times["ours"]), "bare_images_per_s": statistics.median(times["bare"]),
            "ratio": ratio}


def _train_seconds(root: Path, out: Path, nproc: int, steps: int, batch: int) -> float:
    cmd = [sys.executable, "-m", "topoviewer", "train", "--data", str(root), "--steps", str(steps),
           "--batch-size", str(batch), "--checkpoint-every", str(10**6), "--workers", "0", "--device", "cpu",
           "--val-per-category", "0", "--quiet", "--force", "--out", str(out)]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def bench_ddp(root: Path, per_process: int, short: int, long: int) -> dict:
    out = {}
    for nproc in (1, 2):
        path = root.parent / f"ddp{nproc}.safetensors"
        t_short = _train_seconds(root, path, nproc, short, per_process * nproc)
        t_long = _train_seconds(root, path, nproc, long, per_process * nproc)
        out[f"step_s_{nproc}"] = (t_long - t_short) / (long - short)
    out["ratio"] = out["step_s_2"] / out["step_s_1"]
    out.update(per_process_batch=per_process, steps=f"{long} − {short}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    results = {"cpu_count": os.cpu_count(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        root.mkdir()
        n = 128 if args.quick else 256
        make_images(root, n)
        results["loader"] = bench_loader(root, n, batches=4 if args.quick else 8, workers=args.workers,
                                         rounds=3 if args.quick else 5)
        results["ddp"] = bench_ddp(root, per_process=16, short=3, long=13 if args.quick else 33)
    results["load_average_at_end"] = os.getloadavg()
    ld, dd = results["loader"], results["ddp"]
    print(f"loader: {ld['ours_images_per_s']:.0f} images/s vs bare PIL {ld['bare_images_per_s']:.0f} images/s "
          f"({ld['workers']} workers): {ld['ratio']:.2f}× (target ≥ 0.8×)")
    print(f"data-parallel on CPU: {dd['step_s_1'] * 1000:.0f} ms/step (1 process) vs {dd['step_s_2'] * 1000:.0f} ms/step "
          f"(2 gloo processes, same per-process batch {dd['per_process_batch']}): {dd['ratio']:.2f}×")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
