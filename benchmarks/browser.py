"""The shared page (``topoviewer share``) in a real browser: size, build, load, and redraw times.

Usage::

    .venv/bin/python benchmarks/browser.py                       # the embedded default model
    .venv/bin/python benchmarks/browser.py --json share.json --screenshot docs/images/share.png

Needs Debian's ``chromium`` (``apt-get install chromium``) and the ``playwright`` package (dev
extra); Playwright drives the system Chromium (``executable_path``), it downloads nothing. The
page is opened from a ``file://`` URL with every other request aborted.

What is measured (medians over ``--repeats`` actions, timed inside the page with ``performance.now``):

* **switch**: ``topoviewer.setCategory`` — every category-dependent panel redrawn (d′, voxel t with
  outlines, purity rings and curve of every sheet); the categories are cycled.
* **click**: ``topoviewer.stimulate`` at random points of the first sheet — nearest precomputed
  site, the next sheet's propagated map, the disc on the stimulated sheet's maps, the read-out.
* each twice: the synchronous redraw (**script**) and until the next animation frame after it
  (**frame**: script + style, layout, paint and compositing of that frame).

Side by side, in the same run, the same actions the static way: the matplotlib figure of one
category (:func:`topoviewer.figures.map_figure`, PNG at 100 dpi) for a switch, and the live
Python click (``Stimulator.stimulate`` + ``Sheet.rasterise`` of the propagated map, benchmark 1 of
``run.py``) for a click. Target: switch and click ≤ 100 ms (frame time).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 100.0

#: One action in the page, then two animation frames: returns [script ms, frame ms].
ACTION_JS = """async ([kind, arg, x, y]) => {
  const tv = window.topoviewer, t0 = performance.now();
  const e = kind === "category" ? tv.setCategory(arg) : tv.stimulate(arg, x, y);
  await new Promise((r) => requestAnimationFrame(() => r()));
  return [e.ms, performance.now() - t0];
}"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="sample")
    p.add_argument("--repeats", type=int, default=40)
    p.add_argument("--threads", type=int, default=1, help="torch threads for building the page and the baselines")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--screenshot", help="write a PNG of the page after a click (docs/images/share.png)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from playwright.sync_api import sync_playwright

    from topoviewer.figures import map_figure
    from topoviewer.io import load
    from topoviewer.pipeline import Stimulator, analyze, default_stimuli
    from topoviewer.share import share_page

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("benchmarks/browser.py needs Debian's chromium: apt-get install chromium")
    model = load(args.model)
    stimuli = default_stimuli(model)
    analysis = analyze(model, stimuli)
    tmp = Path(tempfile.mkdtemp(prefix="topoviewer-share-"))
    t0 = time.perf_counter()
    path, precomputed = share_page(analysis, model, tmp / "page.html", stimuli=stimuli)
    build_s = time.perf_counter() - t0
    first = model.sheets[0]
    rng = np.random.default_rng(0)
    cats = list(analysis.categories)

    # the static way, same machine, same run
    fig_ms = []
    for k in range(min(6, args.repeats)):
        t = time.perf_counter()
        map_figure(analysis, model, tmp / "fig.png", category=cats[k % len(cats)], dpi=100)
        fig_ms.append(1000 * (time.perf_counter() - t))
    stim = Stimulator(model, first.name, stimuli, responses=analysis.responses)
    nxt = model.sheet(stim.next_layer)
    py_ms = []
    for _ in range(args.repeats):
        site = tuple(rng.uniform(0, 1, 2) * first.extent_mm + first.origin_mm)
        t = time.perf_counter()
        nxt.rasterise(stim.stimulate(site).propagated)
        py_ms.append(1000 * (time.perf_counter() - t))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 620})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
        t = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_function("window.topoviewer !== undefined")
        load_ms = 1000 * (time.perf_counter() - t)
        first_draw_ms = page.evaluate("window.topoviewer.first.ms")
        switch, click = [], []
        for k in range(args.repeats):
            switch.append(page.evaluate(ACTION_JS, ["category", cats[(k + 1) % len(cats)], 0, 0]))
            x, y = rng.uniform(0, 1, 2) * first.extent_mm + first.origin_mm
            click.append(page.evaluate(ACTION_JS, ["stimulate", first.name, float(x), float(y)]))
        if args.screenshot:
            page.evaluate("window.topoviewer.setCategory('faces')")
            pt = page.evaluate(f"window.topoviewer.at('{first.name}', 'dprime', 4.5, 1.5)")
            page.mouse.click(pt["x"], pt["y"])
            pt = page.evaluate(f"window.topoviewer.at('{stim.next_layer}', 'stim', 4.2, 8.3)")
            page.mouse.move(pt["x"], pt["y"])
            page.screenshot(path=args.screenshot, full_page=True)
            print(f"wrote {args.screenshot}")
        version = browser.version
        browser.close()

    med = statistics.median
    res = {
        "model": model.name, "units": [s.n_units for s in model.sheets], "categories": len(cats),
        "browser": f"Chromium {version} (headless, --disable-gpu)", "python": platform.python_version(),
        "torch_threads": args.threads, "repeats": args.repeats,
        "page_mb": path.stat().st_size / 1e6, "precomputed": precomputed, "build_s": build_s,
        "load_ms": load_ms, "first_draw_ms": first_draw_ms,
        "switch_script_ms": med(s for s, _ in switch), "switch_frame_ms": med(f for _, f in switch),
        "switch_frame_max_ms": max(f for _, f in switch),
        "click_script_ms": med(s for s, _ in click), "click_frame_ms": med(f for _, f in click),
        "click_frame_max_ms": max(f for _, f in click),
        "figure_switch_ms": med(fig_ms), "python_click_ms": med(py_ms),
    }
    res["switch_vs_figure"] = res["switch_frame_ms"] / res["figure_switch_ms"]
    res["click_vs_python"] = res["click_frame_ms"] / res["python_click_ms"]
    print(f"{res['model']} ({res['units']} units, {res['categories']} categories) in {res['browser']}")
    print(f"page {res['page_mb']:.2f} MB, built in {build_s:.1f} s ({precomputed}); "
          f"load {load_ms:.0f} ms, first draw {first_draw_ms:.1f} ms")
    for what, base, label in (("switch", "figure_switch_ms", "map_figure PNG 100 dpi"),
                              ("click", "python_click_ms", "Stimulator.stimulate + rasterise")):
        ok = res[f"{what}_frame_ms"] <= TARGET_MS
        print(f"{what:6s}: script {res[f'{what}_script_ms']:6.1f} ms, frame {res[f'{what}_frame_ms']:6.1f} ms "
              f"(max {res[f'{what}_frame_max_ms']:.1f}) | {label}: {res[base]:.1f} ms | target ≤ {TARGET_MS:g} ms: "
              f"{'PASS' if ok else 'FAIL'}")
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
