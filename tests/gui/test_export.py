"""7. Export: publication figure (PNG at a chosen DPI, SVG, PDF), screenshot, maps as NPZ/CSV."""

import csv

import numpy as np
import pytest
from PIL import Image

from topoviewer_napari.state import LOG_FIELDS


@pytest.fixture
def topo(shared_topo):
    """One viewer for the module (opening the plugin costs seconds): each test's category is undone."""
    category = shared_topo.state.category
    yield shared_topo
    shared_topo.state.set_category(category)
    shared_topo.ctrl.wait(30)


def _save_figure(topo, path, **kw):
    """Export through the dock: the figure is drawn in a worker; wait for it."""
    worker = topo.docks["ExportDock"].save_figure(path, **kw)
    assert worker is not None and worker is topo.ctrl.jobs.get(f"figure {path.name}")  # off the GUI thread
    topo.ctrl.wait(120)
    return path


def test_figure_in_three_formats(topo, tmp_path):
    dock = topo.docks["ExportDock"]
    small = _save_figure(topo, tmp_path / "fig-100.png", dpi=100)
    big = _save_figure(topo, tmp_path / "fig-200.png", dpi=200)
    with Image.open(small) as a, Image.open(big) as b:
        assert a.format == "PNG" and abs(b.size[0] / a.size[0] - 2.0) < 0.05  # the DPI choice is honoured
        pixels = np.asarray(a.convert("L"))
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01  # maps drawn, not a blank page
    svg = _save_figure(topo, tmp_path / "fig.svg")
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "d′" in text
    pdf = _save_figure(topo, tmp_path / "fig.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000
    assert "wrote" in dock.last.text() and "fig.pdf" in dock.last.text()


def test_screenshot_and_bad_suffixes(topo, tmp_path, notes):
    dock = topo.docks["ExportDock"]
    path = dock.save_screenshot(tmp_path / "view.png", scale=1.0)
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    assert arr.shape[0] > 100 and arr.std() > 5
    with Image.open(dock.save_screenshot(tmp_path / "view-2x.png", scale=2.0)) as im:
        assert im.size == (2 * arr.shape[1], 2 * arr.shape[0])  # "Scale 2×" really doubles the pixels
    assert dock.save_figure(tmp_path / "fig.gif") is None
    assert any("unknown file type" in m for m in notes())
    assert dock.save_maps(tmp_path / "maps.xlsx") is None
    assert any(".npz or .csv" in m for m in notes())


def test_maps_as_npz_and_csv(topo, tmp_path):
    st, dock = topo.state, topo.docks["ExportDock"]
    topo.ctrl.stimulate_at("fc6", (5.0, 5.0))
    npz = dock.save_maps(tmp_path / "maps.npz")
    with np.load(npz) as z:
        np.testing.assert_allclose(z["fc6/dprime_faces"], st.dprime("fc6", "faces"))
        np.testing.assert_allclose(z["fc7/x_mm"], st.model.sheet("fc7").positions[:, 0])
        np.testing.assert_allclose(z["fc6/voxel_t_faces"], st.t_map("fc6", "faces"), equal_nan=True)
        np.testing.assert_allclose(z["fc6/stimulation"], st.stimulation.activity)
        np.testing.assert_allclose(z["fc7/propagated"], st.stimulation.propagated)
        assert "fc6/purity_faces" in z and float(z["fc6/fwhm_mm"]) == st.fwhm_mm
    path = dock.save_maps(tmp_path / "maps.csv")
    with path.open() as fh:  # the columns docs/gui.md names
        assert next(csv.reader(fh)) == ["sheet", "unit", "x_mm", "y_mm", *(f"dprime_{c}" for c in st.categories),
                                        "stimulation", "propagated"]
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == sum(s.n_units for s in st.model.sheets)
    first = rows[0]
    assert first["sheet"] == "fc6" and first["unit"] == "0"
    assert np.isclose(float(first["dprime_faces"]), st.dprime("fc6", "faces")[0], rtol=1e-5, atol=1e-6)
    log = dock.save_log(tmp_path / "log.csv")
    logged = list(csv.DictReader(log.open()))
    assert len(logged) == len(st.log) >= 1 and list(logged[-1]) == list(LOG_FIELDS)


def test_figure_and_screenshot_forms_are_magicgui(topo, tmp_path, monkeypatch):
    from magicgui.widgets import FunctionGui

    from topoviewer_napari._qt import export_dock

    dock = topo.docks["ExportDock"]
    assert isinstance(dock.figure_form, FunctionGui) and isinstance(dock.screenshot_form, FunctionGui)
    monkeypatch.setattr(export_dock, "ask_save_path", lambda *args: str(tmp_path / "chosen"))
    dock.figure_form.format.value = "SVG"
    dock.figure_form()  # what "Save figure…" does, with the path the dialog returned
    topo.ctrl.wait(120)
    assert (tmp_path / "chosen.svg").read_text().lstrip().startswith("<?xml")
    dock.figure_form.format.value = "PNG"
    dock.figure_form.dpi.value = 60
    dock.figure_form()
    topo.ctrl.wait(120)
    with Image.open(tmp_path / "chosen.png") as im:
        assert im.format == "PNG" and abs(im.info["dpi"][0] - 60) < 1  # the form's resolution is used
    topo.docks["ModelDock"].category.setCurrentText("bodies")  # the page opens on the dock's category
    dock.figure_form.format.value = "HTML (interactive)"
    assert dock.figure_form() is not None  # the page too is written in a worker
    topo.ctrl.wait(120)
    page = (tmp_path / "chosen.html").read_text()
    assert page.startswith("<!doctype html>") and '"category":"bodies"' in page
    assert '"layer":"fc6","next":"fc7","category":"bodies"' in page  # the plugin's stimulation experiment
    assert "chosen.html" in dock.last.text()
