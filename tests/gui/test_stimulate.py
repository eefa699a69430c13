"""5. Microstimulation by clicking: the tool, the layers updated in place, the read-out, the log."""

import csv
import time

import numpy as np

from topoviewer.pipeline import Stimulator


def _click(topo, fake_event, sheet, column, xy, process=True, **kw):
    """A click of the tool; with ``process`` the event loop then runs (clicks are stimulated on its next turn)."""
    from qtpy.QtWidgets import QApplication

    world = topo.book.layout.to_world(sheet, column, xy)
    topo.ctrl.tool.on_mouse(topo.viewer, fake_event(world, **kw))
    if process:
        QApplication.processEvents()
    return world


def test_stimulate_tool_story(topo, fake_event, notes, tmp_path):
    """One viewer for the whole story (opening the plugin costs seconds): the first click on prepared layers
    and the click latency, the shortcuts, clicks the tool ignores, a click against the core's experiment,
    inside vs outside and the CSV log."""
    _latency(topo, fake_event)
    topo.ctrl.tool.enabled = False
    _shortcuts(topo, fake_event)
    topo.ctrl.clear_stimulation()
    _toggles_and_ignored_clicks(topo, fake_event, notes)
    topo.ctrl.tool.enabled = False
    _click_against_the_core(topo, fake_event)
    _inside_vs_outside_and_csv(topo, tmp_path)


def _click_against_the_core(topo, fake_event):
    st, book, v = topo.state, topo.book, topo.viewer
    topo.docks["StimulateDock"].tool_button.click()
    assert topo.ctrl.tool.enabled
    dock = topo.docks["StimulateDock"]
    dock.radius.value = 1.5
    n_log, n_rows = len(st.log), dock.table.rowCount()
    xy = (4.0, 6.0)
    world = book.layout.to_world("fc6", "dprime", xy)
    # through napari's own dispatch of viewer callbacks, as a real click
    for cb in list(v.mouse_drag_callbacks):
        cb(v, fake_event(world))
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()  # the click is stimulated on the next event-loop turn
    r = st.stimulation
    assert r is not None and r.layer == "fc6" and r.next_layer == "fc7"
    np.testing.assert_allclose(r.site_mm, xy)
    # same numbers as the core's experiment on the same responses
    ref = Stimulator(st.model, "fc6", st.stimuli, responses=st.analysis.responses).stimulate(xy, radius_mm=1.5)
    assert np.isclose(r.next_patch_mean, ref.next_patch_mean)
    np.testing.assert_allclose(r.propagated, ref.propagated, rtol=1e-5)
    stim_layer, prop_layer = book.get("fc6/stimulation"), book.get("fc7/propagated")
    s6, s7 = st.model.sheet("fc6"), st.model.sheet("fc7")
    np.testing.assert_allclose(stim_layer.data, book.layout.display(s6.rasterise(r.activity)))
    np.testing.assert_allclose(prop_layer.data, book.layout.display(s7.rasterise(r.propagated)))
    # the ring marker: on the clicked maps and in the stimulation cell, diameter = 2 × radius
    sites = book.get("stimulation/sites")
    assert any(np.allclose(p, world) for p in sites.data + sites.translate)  # world = data + translate
    assert np.allclose(sites.size, 3.0)
    # read-out and log
    text = dock.readout.text()
    assert f"{r.next_patch_mean:.3f}" in text and f"{r.baseline:.3f}" in text and f"Δ {r.next_patch_delta:+.3f}" in text
    assert dock.table.rowCount() == n_rows + 1 and dock.table.item(n_rows, 2).text() == "fc6"
    # a second click updates the same layers
    _click(topo, fake_event, "fc6", "voxel_t", (7.0, 2.0))
    assert book.get("fc6/stimulation") is stim_layer and book.get("fc7/propagated") is prop_layer
    assert [k for k in book.keys() if k.endswith("/stimulation")] == ["fc6/stimulation"]
    np.testing.assert_allclose(st.stimulation.site_mm, (7.0, 2.0))
    assert len(st.log) == n_log + 2 and dock.table.rowCount() == n_rows + 2


def _toggles_and_ignored_clicks(topo, fake_event, notes):
    st, tool, v, dock = topo.state, topo.ctrl.tool, topo.viewer, topo.docks["StimulateDock"]
    assert st.stimulation is None and not tool.enabled
    n = len(v.mouse_drag_callbacks)
    dock.tool_button.click()
    assert tool.enabled and len(v.mouse_drag_callbacks) == n + 1
    dock.tool_button.click()
    assert not tool.enabled and len(v.mouse_drag_callbacks) == n
    tool.enabled = True
    assert dock.tool_button.isChecked()  # the button follows the tool
    _click(topo, fake_event, "fc6", "dprime", (5, 5), modifiers=("Shift",))  # left to napari
    _click(topo, fake_event, "fc6", "dprime", (5, 5), button=2)
    _click(topo, fake_event, "fc6", "dprime", (5, 5), type="mouse_release")
    assert st.stimulation is None
    tool.on_mouse(topo.viewer, fake_event((-100.0, -100.0)))  # outside every cell
    assert st.stimulation is None
    _click(topo, fake_event, "fc7", "dprime", (5, 5))  # last sheet: nothing downstream
    assert st.stimulation is None and any("last sheet" in m for m in notes())
    # the tool still works; the click shows the hidden stimulation layers (6 `visible` sets) and napari
    # redoes its scene graph once for all of them (LayerBook.scene_update), not once per layer
    canvas = v.window._qt_viewer.canvas
    redone, update = [], canvas._update_scenegraph

    def counted(event=None):
        if not canvas._pause_scene_graph:
            redone.append(1)
        return update(event)

    canvas._update_scenegraph = counted
    try:
        _click(topo, fake_event, "fc6", "dprime", (5, 5))
        assert st.stimulation is not None
        shown = [k for k in topo.book.keys() if k.endswith(("/stimulation", "/propagated")) and topo.book.get(k).visible]
        assert len(shown) >= 2 and len(redone) == 1
        _click(topo, fake_event, "fc6", "dprime", (4, 4))  # nothing to show: nothing redone
        assert len(redone) == 1
    finally:
        del canvas._update_scenegraph


def _inside_vs_outside_and_csv(topo, tmp_path):
    st, dock = topo.state, topo.docks["StimulateDock"]
    assert dock.sheet_combo.value == "fc6"
    dock.io_button.click()
    assert [row["site"] for row in st.log[-2:]] == ["inside", "outside"]
    stim = st.stimulator("fc6")
    np.testing.assert_allclose((st.log[-2]["x_mm"], st.log[-2]["y_mm"]), stim.site("inside"), atol=1e-4)
    text = dock.readout.text()
    assert f"Δ inside {st.log[-2]['next_patch_delta']:+.3f} vs Δ outside {st.log[-1]['next_patch_delta']:+.3f}" in text
    path = tmp_path / "log.csv"
    assert dock.save_csv(path) == path
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == len(st.log) and rows[-2]["site"] == "inside" and float(rows[-2]["next_patch_mean"]) >= 0
    assert set(rows[0]) >= {"layer", "x_mm", "y_mm", "radius_mm", "next_patch_mean", "baseline", "next_patch_delta"}


def _latency(topo, fake_event):
    """Click → stimulation → layers updated; the first click also prepares the experiment."""
    from qtpy.QtWidgets import QApplication

    topo.ctrl.prepare_stimulation()  # what the controller does after an analysis: hidden layers, experiment ready
    prepared = topo.book.get("fc6/stimulation")
    assert prepared.visible  # drawn once (zeros), so that its shaders are built before the first click
    topo.ctrl.wait(10)
    assert prepared is not None and not prepared.visible and topo.book.get("stimulation/sites").data.shape == (0, 2)
    topo.ctrl.tool.enabled = True
    t0 = time.perf_counter()
    _click(topo, fake_event, "fc6", "dprime", (5, 5))
    first = 1000 * (time.perf_counter() - t0)
    assert topo.book.get("fc6/stimulation") is prepared and prepared.visible
    assert topo.book.get("fc7/propagated").visible and topo.book.get("stimulation/sites").visible
    QApplication.processEvents()
    times = []
    for i in range(15):
        t0 = time.perf_counter()
        _click(topo, fake_event, "fc6", "dprime", (2 + 0.4 * i, 5))
        times.append(1000 * (time.perf_counter() - t0))
        QApplication.processEvents()
    median = float(np.median(times))
    print(f"click-to-updated-layer latency: first {first:.1f} ms, median {median:.1f} ms, max {max(times):.1f} ms")
    assert median < 250  # generous for loaded CI machines; the docs report the measured value
    assert topo.state.log[-1]["latency_ms"] > 0
    # a burst of clicks before the event loop turns: only the latest is computed and logged
    n_log = len(topo.state.log)
    for i in range(5):
        _click(topo, fake_event, "fc6", "dprime", (2 + i, 3), process=False)
    assert len(topo.state.log) == n_log
    QApplication.processEvents()
    assert len(topo.state.log) == n_log + 1
    np.testing.assert_allclose(topo.state.stimulation.site_mm, (6, 3))
    sites = topo.book.get("stimulation/sites")  # the markers moved to the latest site
    assert any(np.allclose(p, topo.book.layout.to_world("fc6", "dprime", (6, 3))) for p in sites.data + sites.translate)


def _shortcuts(topo, fake_event):
    from napari.utils.key_bindings import KeyBinding

    v, st, book = topo.viewer, topo.state, topo.book

    def press(key):  # what napari runs for the key combination
        v.keymap[KeyBinding.from_str(key)](v)

    assert not topo.ctrl.tool.enabled
    press("Shift-S")
    assert topo.ctrl.tool.enabled and topo.docks["StimulateDock"].tool_button.isChecked()
    _click(topo, fake_event, "fc6", "dprime", (5, 5))
    assert st.stimulation is not None and book.get("fc7/propagated").visible
    n_log = len(st.log)
    press("Shift-X")
    assert st.stimulation is None and len(st.log) == n_log  # the log is kept
    assert not book.get("fc6/stimulation").visible and not book.get("fc7/propagated").visible
    assert not book.get("stimulation/sites").visible
    _click(topo, fake_event, "fc6", "dprime", (4, 4))  # the next stimulation shows its layers again
    assert book.get("fc7/propagated").visible
    press("Shift-S")
    assert not topo.ctrl.tool.enabled
