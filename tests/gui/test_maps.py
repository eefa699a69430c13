"""3. Sheets as layers: d′, voxel t with patch outline, purity rings + plot, unit points, hover."""

import numpy as np
import pytest


def nearest_unit_value(sheet, values, xy):
    return float(np.asarray(values)[int(np.argmin(sheet.distances_to(xy)))])


@pytest.fixture
def topo(shared_topo):
    """One viewer for the module: each test leaves category, FWHM and thresholds as it found them."""
    st = shared_topo.state
    settings = (st.category, st.fwhm_mm)
    yield shared_topo
    assert (st.category, st.fwhm_mm) == settings, "a test left the shared viewer's settings changed"


def _layer(topo, key):
    layer = topo.book.get(key)
    assert layer is not None, key
    return layer


def test_dprime_layers_sit_on_their_sheet(topo):
    st, book = topo.state, topo.book
    for s in st.model.sheets:
        layer = _layer(topo, f"{s.name}/dprime")
        dp = st.dprime(s.name)
        lo, hi = layer.contrast_limits
        assert lo == -hi and hi >= 1.5 * st.threshold  # symmetric, diverging
        assert np.isclose(hi, max(np.percentile(np.abs(dp), 99), 1.5 * st.threshold))
        assert layer.colormap.name == "RdBu_r"
        # the pixel under a unit's world position shows that unit's d′ (nearest unit)
        for i in range(0, s.n_units, 37):
            world = book.layout.to_world(s.name, "dprime", s.positions[i])
            value = layer.get_value(world, world=True)
            assert np.isclose(value, nearest_unit_value(s, dp, s.positions[i]), atol=1e-6)


def test_sheets_are_side_by_side_and_not_overlapping(topo):
    book = topo.book
    e6 = _layer(topo, "fc6/dprime").extent.world
    e7 = _layer(topo, "fc7/dprime").extent.world
    assert e6[1][0] <= e7[0][0] or e7[1][0] <= e6[0][0]  # rows do not overlap
    t6 = _layer(topo, "fc6/voxel_t").extent.world
    assert e6[1][1] <= t6[0][1]  # the voxel t column is right of the d′ column
    assert book.layout.locate(((e6[0][0] + e6[1][0]) / 2, (e6[1][1] + t6[0][1]) / 2)) is None


def test_category_and_fwhm_update_layers_in_place(topo, qtbot):
    st, dock = topo.state, topo.docks["ModelDock"]
    dp_layer, t_layer = _layer(topo, "fc6/dprime"), _layer(topo, "fc6/voxel_t")
    before_t = np.array(t_layer.data)
    dock.category.setCurrentText("bodies")
    topo.ctrl.wait(10)  # secondary maps follow on the next event-loop turn
    assert st.category == "bodies"
    assert _layer(topo, "fc6/dprime") is dp_layer and dp_layer.name == "fc6 · d′ bodies"
    np.testing.assert_allclose(np.nanmax(np.abs(dp_layer.data)),
                               np.nanmax(np.abs(st.dprime("fc6", "bodies"))), rtol=1e-6)
    assert "bodies" in _layer(topo, "fc6/purity").name
    dock.fwhm.setValue(2.5)
    topo.ctrl.wait(60)
    assert st.fwhm_mm == 2.5
    assert _layer(topo, "fc6/voxel_t") is t_layer
    assert not np.allclose(np.nan_to_num(before_t), np.nan_to_num(t_layer.data))
    # the patch outline is a Labels contour on the voxel grid (upsampled for a thin line)
    patch = _layer(topo, "fc6/patch")
    assert patch.contour >= 1 and patch.data.shape[0] == 4 * st.t_map("fc6").shape[0]
    assert "FWHM 2.5" in " ".join(dock.summary.text().split())
    dock.category.setCurrentText("faces")  # the viewer is the module's: leave it as found
    dock.fwhm.setValue(1.0)
    topo.ctrl.wait(60)


def test_patch_outline_marks_voxels_above_threshold(topo):
    st = topo.state
    st.t_threshold = 1.0  # the untrained tiny model has no t > 10 voxel: lower the bar to see an outline
    st.set_voxel_t(st.fwhm_mm, st.voxel_t)
    labels = st.patch_labels("fc6")
    t = st.t_map("fc6")
    assert labels.any() and np.all(t[labels > 0] > 1.0)
    shown = _layer(topo, "fc6/patch").data
    assert shown.sum() == 16 * (labels > 0).sum()


def test_purity_rings_and_plot(topo):
    st = topo.state
    plot = topo.docks["PurityDock"]
    for s in st.model.sheets:
        curve = st.purity(s.name)
        rings = _layer(topo, f"{s.name}/purity")
        assert rings.contrast_limits == [0.0, 1.0] or tuple(rings.contrast_limits) == (0.0, 1.0)
        assert rings.colormap.name == "magma"  # the figure's purity colormap too (topoviewer.style)
        x, y = plot.curves[s.name].getData()
        ok = np.isfinite(curve.purity)
        np.testing.assert_allclose(y, curve.purity[ok])
        np.testing.assert_allclose(x, curve.distance_mm[ok])
        centre = _layer(topo, f"{s.name}/purity_centre")
        np.testing.assert_allclose(centre.data[0], topo.book.layout.to_world(s.name, "dprime", curve.centre))


def test_unit_points_coloured_by_selected_map(topo):
    st, book = topo.state, topo.book
    pts = _layer(topo, "fc6/units")
    s = st.model.sheet("fc6")
    assert len(pts.data) == s.n_units
    np.testing.assert_allclose(pts.features["value"], st.dprime("fc6"))
    np.testing.assert_allclose(pts.data[5], book.layout.to_world("fc6", "dprime", s.positions[5]))
    # most positive d′ is reddest, most negative bluest (RdBu_r)
    order = np.argsort(st.dprime("fc6"))
    assert pts.face_color[order[-1]][0] > pts.face_color[order[-1]][2]
    assert pts.face_color[order[0]][2] > pts.face_color[order[0]][0]


def test_hover_names_sheet_position_and_values(topo, fake_event):
    st, book, v = topo.state, topo.book, topo.viewer
    s = st.model.sheet("fc6")
    xy = s.positions[10]
    world = book.layout.to_world("fc6", "voxel_t", xy)
    book._on_hover(v, fake_event(world, type="mouse_move"))
    text = v.canvas.overlays.text.text
    assert text.startswith("fc6 (cIT)") and f"x {xy[0]:.2f}, y {xy[1]:.2f} mm" in text
    assert f"d′ faces {st.dprime('fc6')[10]:+.2f}" in text and " t " in text
    book._on_hover(v, fake_event((-50.0, -50.0), type="mouse_move"))
    assert not v.canvas.overlays.text.visible


def test_purity_dock_draws_the_spatial_null_band(topo):
    st, dock = topo.state, topo.docks["PurityDock"]
    assert dock.bands == {} and st.null("fc6") is None
    dock.null_button.click()
    topo.ctrl.wait(120, ["null"])
    assert set(dock.bands) == {"fc6", "fc7"} and "spatial null" in dock.note.text()
    for name, (d, lo, hi) in dock.bands.items():
        curves = st.null(name).purity_curves  # (100 shuffles, bins)
        assert curves.shape[0] == 100
        k = len(d)
        np.testing.assert_allclose(lo, np.nanpercentile(curves, 5, axis=0)[:k])
        np.testing.assert_allclose(hi, np.nanpercentile(curves, 95, axis=0)[:k])
        # the null's observed value is the curve the dock draws (one purity implementation)
        assert st.null(name).purity["purity_1_2mm"].observed == st.purity(name).purity[1]


def test_selected_map_layer_shows_napari_colorbar(topo):
    v = topo.viewer
    dp, t = _layer(topo, "fc6/dprime"), _layer(topo, "fc7/voxel_t")
    v.layers.selection.active = dp
    assert dp.colorbar.visible and not t.colorbar.visible
    v.layers.selection.active = t
    assert t.colorbar.visible and not dp.colorbar.visible
    assert sum(lyr.colorbar.visible for lyr in v.layers if hasattr(lyr, "colorbar")) == 1


def test_threshold_controls_redraw_outlines_and_purity(topo, qtbot):
    from topoviewer.analysis import find_patches, purity_curve

    st, dock = topo.state, topo.docks["ModelDock"]
    dock.t_threshold.setValue(3.0)
    qtbot.wait(50)  # secondary maps are redrawn on the next event-loop turn
    assert st.t_threshold == 3.0
    for s in st.model.sheets:
        shown = _layer(topo, f"{s.name}/patch").data  # outlines are drawn on 4× upsampled voxels
        expected = find_patches(st.t_map(s.name), threshold=3.0)[0] > 0
        assert shown.sum() == 16 * expected.sum() and (expected.any() or not shown.any())
    dock.dprime_threshold.setValue(0.5)
    qtbot.wait(50)
    assert st.threshold == 0.5
    s = st.model.sheets[0]
    dp = st.dprime(s.name)
    own = purity_curve(s, dp > 0.5, values=dp)
    np.testing.assert_allclose(st.purity(s.name).purity, own.purity)
    x, y = topo.docks["PurityDock"].curves[s.name].getData()
    np.testing.assert_allclose(y, own.purity[np.isfinite(own.purity)])
    dock.dprime_threshold.setValue(0.85)
    dock.t_threshold.setValue(10.0)
