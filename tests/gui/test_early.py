"""Early visual maps in the viewer: the Gratings button, HSV orientation layer with pinwheels, OSI and SF
layers, the hover read-out and the early-maps figure."""

import numpy as np
import pytest


def test_gratings_button_adds_early_map_layers(topo, tmp_path, notes):
    """One viewer for the whole story (a viewer per test costs seconds)."""
    st, book, dock = topo.state, topo.book, topo.docks["ModelDock"]
    analysis = st.analysis
    # before Gratings, an early-maps figure is one notification and no file
    assert topo.docks["ExportDock"].save_figure(tmp_path / "x.png", 60, "early visual") is None
    assert any("no early visual maps yet" in n for n in notes())
    assert not (tmp_path / "x.png").exists()
    dock.gratings_button.click()
    topo.ctrl.wait(120)
    assert st.early is not None and st.analysis is analysis  # the category maps stay
    for s in st.model.sheets:
        early = st.early.sheets[s.name].early
        ori = book.get(f"{s.name}/orientation")
        assert ori.colormap.name == "hsv" and tuple(ori.contrast_limits) == (0.0, 180.0)
        # the pixel under a pinwheel-free map point shows the smoothed map's angle there
        r, c = np.argwhere(np.isfinite(early.orientation.z))[len(early.pinwheels.charge)]
        xy = np.asarray(early.orientation.grid.origin_mm) + (np.array([c, r]) + 0.5) * early.orientation.grid.pixel_mm
        value = ori.get_value(book.layout.to_world(s.name, "dprime", xy), world=True)
        assert value == pytest.approx(early.orientation.orientation_deg[r, c], abs=1e-3)
        points = book.get(f"{s.name}/pinwheels")
        np.testing.assert_allclose(points.data, book.layout.to_world(s.name, "dprime", early.pinwheels.positions_mm))
        assert book.get(f"{s.name}/osi").colormap.name == "viridis" and book.get(f"{s.name}/sf") is not None
        assert book.get(f"{s.name}/colour") is None  # a 1-channel model has no colour map
        i = 5
        text = book.describe(book.layout.to_world(s.name, "dprime", s.positions[i]))
        unit = int(text.split("unit ")[1].split()[0])
        assert f"orientation {early.tuning.orientation_deg[unit]:.0f}° (OSI {early.tuning.osi[unit]:.2f})" in text
        assert "d′" in text  # the category read-out is still there
        assert points.name == f"{s.name} · pinwheels ({len(early.pinwheels.charge)})"
    titles = book.get("layout/cells").features["title"].tolist()
    assert sum(t.endswith(" / orientation") for t in titles) == len(st.model.sheets)
    # export: the early figure, and the unit table gains the per-unit maps
    out = tmp_path / "early.png"
    assert topo.docks["ExportDock"].save_figure(out, 60, "early visual") is topo.ctrl.jobs.get("figure early.png")
    topo.ctrl.wait(120)
    assert out.stat().st_size > 10_000
    table = st.unit_table()["fc6"]
    np.testing.assert_array_equal(table["osi"], st.early.sheets["fc6"].early.tuning.osi)

