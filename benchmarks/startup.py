"""Time to first picture: ``topoviewer-napari`` vs a bare ``napari.Viewer()``, side by side in one run.

Usage (needs a display; on a headless machine under Xvfb)::

    xvfb-run -a .venv/bin/python benchmarks/startup.py [--repeats 3] [--json startup.json]

Every repeat starts two fresh processes, alternately, so machine load hits both alike:

* **bare**: ``import napari; napari.Viewer()``, then the next event-loop turn (the window is up);
* **topoviewer**: ``topoviewer-napari --quit-when-ready`` (the default model): its *first picture*
  is the next event-loop turn after the d′ maps of every sheet were handed to their layers (from
  the analysis cache, before the model itself is loaded); it is *ready* when the model is loaded,
  its maps handed to the state and every secondary map drawn (the docks are up by then).

Both are timed from the process's own start (``psutil``) and print their time. The first
topoviewer run (after a first bare one, which also warms the disk cache) uses an empty analysis cache (``TOPOVIEWER_CACHE_DIR`` points at a fresh folder:
the first start ever); the repeats find the cache that run wrote (every later start). Reported:
medians, and the ratio topoviewer / bare (target ≤ 1.5× with the cache), for the first picture
and for ready.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BARE = """
import time, psutil
t0 = psutil.Process().create_time()
import napari
from qtpy.QtCore import QTimer
viewer = napari.Viewer(title="bare")
def painted():
    print(f"first picture after {time.time() - t0:.3f} s", flush=True)
    viewer.close()
QTimer.singleShot(0, painted)
napari.run()
"""

TIME = re.compile(r"first picture after ([0-9.]+) s")
READY = re.compile(r"ready after ([0-9.]+) s")


def _run(cmd, env, timeout=300, pattern=TIME) -> float:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    m = pattern.search(out.stdout)
    if m is None:
        raise RuntimeError(f"{cmd[:3]}… printed no time (exit {out.returncode}):\n{out.stdout}\n{out.stderr[-2000:]}")
    return float(m.group(1))


def _topoviewer(cmd, env) -> tuple:
    """(first picture, ready) of one topoviewer start, in seconds."""
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    found = [p.search(out.stdout) for p in (TIME, READY)]
    if None in found:
        raise RuntimeError(f"{cmd[:3]}… printed no time (exit {out.returncode}):\n{out.stdout}\n{out.stderr[-2000:]}")
    return tuple(float(m.group(1)) for m in found)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="pairs of runs with the cache filled (default 3)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    args = p.parse_args(argv)
    py = sys.executable
    tv = [str(Path(py).with_name("topoviewer-napari")), "--quit-when-ready"]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "TOPOVIEWER_CACHE_DIR": cache}
        bare_first = _run([py, "-c", BARE], env)
        cold, cold_ready = _topoviewer(tv, env)
        print(f"cold cache: topoviewer {cold:.2f} s (ready {cold_ready:.2f} s), bare {bare_first:.2f} s",
              file=sys.stderr, flush=True)
        warm, ready, bare = [], [], []
        for i in range(args.repeats):
            first, done = _topoviewer(tv, env)
            warm.append(first)
            ready.append(done)
            bare.append(_run([py, "-c", BARE], env))
            print(f"repeat {i + 1}: topoviewer {warm[-1]:.2f} s (ready {ready[-1]:.2f} s), bare {bare[-1]:.2f} s",
                  file=sys.stderr, flush=True)
    med = statistics.median
    res = {
        "bare_first_s": bare_first, "bare_s": bare, "topoviewer_cold_s": cold, "topoviewer_s": warm, "topoviewer_ready_s": ready,
        "topoviewer_cold_ready_s": cold_ready,
        "bare_median_s": med(bare), "topoviewer_median_s": med(warm), "topoviewer_ready_median_s": med(ready),
        "ratio": med(warm) / med(bare), "ratio_ready": med(ready) / med(bare),
        "ratio_pairs": [w / b for w, b in zip(warm, bare, strict=True)],
        "ratio_cold": cold / bare_first,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    print(f"time to first picture: topoviewer {res['topoviewer_median_s']:.2f} s (median of {len(warm)}, cached "
          f"analysis), bare napari.Viewer() {res['bare_median_s']:.2f} s → ratio {res['ratio']:.2f}× "
          f"({'PASS' if res['ratio'] <= 1.5 else 'FAIL'}, target ≤ 1.5×); first start ever (empty cache) "
          f"{cold:.2f} s = {res['ratio_cold']:.2f}×; ready (model loaded, every map drawn) "
          f"{res['topoviewer_ready_median_s']:.2f} s = {res['ratio_ready']:.2f}×")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
