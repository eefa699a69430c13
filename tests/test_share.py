"""The shared page (``topoviewer share``): its data against the core, the CLI, and the page in a real Chromium.

The browser test opens the file from disk in Debian's headless Chromium (driven by Playwright with
``executable_path``, no browser download) with every non-file request aborted and recorded,
switches the category, hovers and clicks a map, and checks the read-outs against values computed
here from the analysis and an independent :class:`~topoviewer.pipeline.Stimulator`.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from topoviewer import defaults
from topoviewer.errors import TopoviewerError
from topoviewer.style import map_limits


@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_model):
    """The tiny model analysed on the localizer and its page, with two of the stimuli as user images."""
    from topoviewer.pipeline import analyze, default_stimuli
    from topoviewer.share import share_page

    stimuli = default_stimuli(tiny_model)
    analysis = analyze(tiny_model, stimuli)
    out = tmp_path_factory.mktemp("share") / "tiny.html"
    path, precomputed = share_page(analysis, tiny_model, out, stimuli=stimuli, images=stimuli.images[:2],
                                   image_names=["first.png", "second.png"])
    html = path.read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S).group(1))
    return SimpleNamespace(path=path, html=html, data=data, precomputed=precomputed, analysis=analysis,
                           stimuli=stimuli, model=tiny_model)


def _array(b64, dtype):
    return np.frombuffer(base64.b64decode(b64), dtype=np.dtype(dtype).newbyteorder("<"))


def _sheet(data, name):
    return next(s for s in data["sheets"] if s["name"] == name)


def _stimulator(shared):
    from topoviewer.pipeline import Stimulator

    return Stimulator(shared.model, "fc6", shared.stimuli, responses=shared.analysis.responses)


def test_page_is_self_contained_and_its_maps_are_the_analysis(shared):
    html, data, analysis = shared.html, shared.data, shared.analysis
    assert re.search(r"https?:|\b(src|href)\s*=|@import|url\(", html, re.I) is None  # nothing to fetch
    assert "default-src 'none'" in html  # and the browser is told to fetch nothing
    assert data["categories"] == list(analysis.categories) and data["category"] == "faces"
    for name, maps in analysis.sheets.items():
        block = _sheet(data, name)
        sheet = shared.model.sheet(name)
        np.testing.assert_array_equal(_array(block["positions"], np.float32), sheet.positions.astype(np.float32).ravel())
        index = _array(block["raster"]["index"], np.int32).reshape(block["raster"]["rows"], block["raster"]["cols"])
        raster = sheet.rasterise(np.arange(sheet.n_units, dtype=float))  # each pixel: its nearest unit
        np.testing.assert_array_equal(index, np.where(np.isnan(raster), -1, raster))
        for c in analysis.categories:
            cat = block["categories"][c]
            dp = _array(cat["dprime"], np.float32)
            np.testing.assert_array_equal(dp, maps.dprime[c].astype(np.float32))
            assert cat["dprime_limits"] == list(map_limits("dprime", maps.dprime[c], threshold=maps.thresholds[c]))
            t = _array(cat["t"], np.float32).reshape(maps.voxel_t[c].shape)
            np.testing.assert_array_equal(t, maps.voxel_t[c].astype(np.float32))
            assert cat["fraction"] == pytest.approx(np.mean(maps.dprime[c] > maps.thresholds[c]))
    assert data["images"][1]["name"] == "second.png"
    act = shared.model.responses(shared.stimuli.images[1:2], ["fc7"])["fc7"][0]
    lo, hi = _sheet(data, "fc7")["activations"][1]["limits"]
    codes = _array(_sheet(data, "fc7")["activations"][1]["codes"], np.uint8)
    np.testing.assert_allclose(lo + codes * (hi - lo) / 255, act, atol=(hi - lo) / 510 + 1e-6)  # 8 bits per unit


def test_precomputed_sites_are_the_stimulator_s_results(shared):
    (block,) = shared.data["stimulation"]
    assert (block["layer"], block["next"], block["step_mm"], block["radius_mm"]) == ("fc6", "fc7", 0.5,
                                                                                      defaults.STIM_RADIUS_MM)
    assert block["rows"] * block["cols"] == 400 and shared.precomputed.startswith("precomputed 400 sites of fc6")
    stim = _stimulator(shared)
    n = shared.model.sheet("fc7").n_units
    codes = _array(block["maps"], np.uint8).reshape(-1, n)
    top = _array(block["map_max"], np.float32)
    for i in (0, 187, 399):
        r, c = divmod(i, block["cols"])
        site = (0.25 + 0.5 * c, 0.25 + 0.5 * r)  # row-major grid centres, rows along y
        res = stim.stimulate(site)
        assert _array(block["next_patch_delta"], np.float32)[i] == pytest.approx(res.next_patch_delta, abs=1e-6)
        assert _array(block["units"], np.int32)[i] == res.stimulated_units
        assert top[i] == pytest.approx(res.propagated.max(), rel=1e-6)
        np.testing.assert_allclose(codes[i] * top[i] / 255, res.propagated, atol=top[i] / 510 + 1e-7)
    assert block["baseline"] == pytest.approx(float(stim.baseline[stim.next_patch_units].mean()))


def test_site_grid_grows_to_fit_the_budget(tiny_model, monkeypatch):
    from topoviewer import share

    assert share._site_step(tiny_model, ["fc6"], 0.5) == 0.5  # 400 sites × 256 units fit
    monkeypatch.setattr(share, "SITE_BUDGET_BYTES", 100 * 256)  # room for 100 maps of fc7
    step = share._site_step(tiny_model, ["fc6"], 0.5)
    rows, cols = tiny_model.sheet("fc6").grid(step).shape
    assert step > 0.5 and rows * cols * 256 <= 100 * 256
    assert tiny_model.sheet("fc6").grid(step / 1.25).shape[0] ** 2 * 256 > 100 * 256  # the smallest that fits
    monkeypatch.setattr(share, "SITE_BUDGET_BYTES", 255)  # not even one map of fc7
    with pytest.raises(TopoviewerError, match="one site each already takes 256 bytes"):
        share._site_step(tiny_model, ["fc6"], 0.5)


def _pictures(folder, n, seed):
    folder.mkdir(parents=True)
    for k in range(n):
        pixels = np.random.default_rng(seed + k).random((40, 50)) * 255
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"p{k}.png")


def test_cli_share_and_figure_html(tiny_model_file, tmp_path, capsys):
    from topoviewer.cli import main

    stim = tmp_path / "stimuli"  # a small stimulus folder keeps the two analyses fast
    _pictures(stim / "faces", 6, 0)
    _pictures(stim / "places", 6, 10)
    _pictures(tmp_path / "pics", 2, 20)
    out = tmp_path / "page.html"
    common = [str(tiny_model_file), "--stimuli", str(stim)]
    assert main(["share", *common, "--out", str(out), "--images", str(tmp_path / "pics"), "--category", "places"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "precomputed 400 sites of fc6 every 0.5 mm → fc7" in printed
    text = out.read_text()
    assert '"category":"places"' in text and '"name":"p1.png"' in text
    assert main(["share", *common, "--out", str(out)]) == 2  # bad inputs: the cases of tests/test_fuzz.py
    assert "already exists" in capsys.readouterr().err and out.read_text() == text  # never overwritten silently
    fig = tmp_path / "fig.html"
    assert main(["figure", *common, "--out", str(fig)]) == 0  # the figure command's HTML format: the same page
    assert "precomputed 400 sites of fc6 every 0.5 mm" in capsys.readouterr().out
    assert fig.read_text().startswith("<!doctype html>") and "window.topoviewer" in fig.read_text()


# ---------------------------------------------------------------------- the page in a browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser_page(shared):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium): the page cannot be opened")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra) drives the browser")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        blocked = []

        def route(r):
            if r.request.url.startswith("file:"):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(shared.path.as_uri())
        page.wait_for_function("window.topoviewer !== undefined")
        yield SimpleNamespace(page=page, blocked=blocked, errors=errors)
        browser.close()


def _shot(page, sheet, kind):
    png = page.locator(f'canvas[data-sheet="{sheet}"][data-kind="{kind}"]').screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def _hover_text(shared, name, category, x, y):
    """The plugin's hover line, computed here from the analysis (the page must print the same)."""
    sheet, maps = shared.model.sheet(name), shared.analysis.sheets[name]
    i = int(np.argmin(np.hypot(*(sheet.positions.astype(np.float32) - np.float32([x, y])).T)))
    parts = [f"{sheet.title}  x {x:.2f}, y {y:.2f} mm  unit {i}",
             f"d′ {category} {np.float32(maps.dprime[category][i]):+.2f}"]
    r, c = sheet.grid(defaults.VOXEL_MM).index_of((x, y))
    parts.append(f"t {np.float32(maps.voxel_t[category][r, c]):+.1f}")
    curve = maps.purity(category)
    k = int(np.hypot(x - curve.centre[0], y - curve.centre[1]) // curve.bin_mm)
    if k < len(curve.purity) and np.isfinite(curve.purity[k]):
        parts.append(f"purity {curve.purity[k]:.2f}")
    return parts


def test_page_in_chromium_switch_hover_click(shared, browser_page):
    page = browser_page.page
    before = _shot(page, "fc6", "dprime")

    def mouse(action, name, kind, x, y):
        """Move (or click) to the whole viewport pixel nearest (x, y) mm; returns that pixel's (x, y) mm."""
        pt = page.evaluate(f"window.topoviewer.at('{name}', '{kind}', {x}, {y})")
        px, py = round(pt["x"]), round(pt["y"])
        getattr(page.mouse, action)(px, py)
        got = page.evaluate(f"window.topoviewer.mm('{name}', '{kind}', {px}, {py})")
        assert np.hypot(got[0] - x, got[1] - y) < 0.1  # within a screen pixel of the aim
        return got

    def hover(name, kind):
        return mouse("move", name, kind, 3.3, 6.7), page.inner_text("#readout")

    (x, y), text = hover("fc6", "dprime")
    assert text.startswith("  ·  ".join(_hover_text(shared, "fc6", "faces", x, y))), text
    assert "  ·  activation " in text  # the first user image is selected
    act_before = _shot(page, "fc6", "activation")
    page.select_option("#image", "1")
    assert np.abs(_shot(page, "fc6", "activation") - act_before).max() > 50  # the second image's activation

    page.select_option("#category", "bodies")  # a real change event
    assert np.abs(_shot(page, "fc6", "dprime") - before).max() > 50  # the d′ map was redrawn for bodies
    (x, y), text = hover("fc7", "voxel_t")
    assert text.startswith("  ·  ".join(_hover_text(shared, "fc7", "bodies", x, y))), text

    prop_before = _shot(page, "fc7", "stim")
    x, y = mouse("click", "fc6", "purity", 7.1, 2.4)
    res = _stimulator(shared).stimulate((7.25, 2.25))  # the nearest site of the 0.5 mm grid
    lines = page.inner_text("#stim-readout").splitlines()
    assert lines[0] == (f"stimulated {res.stimulated_units} units of fc6 at (7.25, 2.25) mm, radius 2 mm"
                        f"{' (clipped by the sheet edge)' if res.clipped else ''}")
    assert lines[1] == (f"fc7 face patch ({len(res.next_patch_units)} units): mean activation "
                        f"{np.float32(res.next_patch_mean):.4f}, Δ {np.float32(res.next_patch_delta):+.4f} from the "
                        f"baseline {res.baseline:.4f} (fc6 silent); whole sheet {np.float32(res.next_mean):.4f}")
    assert lines[2] == f"(the precomputed site nearest the click at ({x:.2f}, {y:.2f}) mm; sites every 0.5 mm)"
    prop = _shot(page, "fc7", "stim")
    assert np.abs(prop - prop_before).max() > 50 and prop.std() > 10  # the propagated map appeared
    (x, y), text = hover("fc7", "stim")
    i = int(np.argmin(np.hypot(*(shared.model.sheet("fc7").positions.astype(np.float32) - np.float32([x, y])).T)))
    shown = float(re.search(r"  ·  propagated (\S+)$", text)[1])
    assert abs(shown - res.propagated[i]) <= res.propagated.max() / 510 + 5e-4  # 8 bits per unit, 3 decimals

    timings = page.evaluate("window.topoviewer.timings")
    done = {t["action"]: t["ms"] for t in timings}
    assert {"category", "image", "stimulate"} <= set(done) and all(0 <= v < 1000 for v in done.values())
    assert browser_page.blocked == [] and browser_page.errors == []
