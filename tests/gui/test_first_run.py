"""First run, drops, the patch table and the workspace: what a new user meets in the first minutes."""

import numpy as np
import pytest
from PIL import Image

from topoviewer_napari import DOCKS
from topoviewer_napari.launch import TAB_TITLES


def _pump(seconds=0.2):
    import time

    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def _dock_frame(widget):
    while type(widget).__name__ != "QtViewerDockWidget":
        widget = widget.parent()
    return widget


def test_first_run_drop_patch_table_and_workspace(topo, tmp_path, notes, monkeypatch):
    """One viewer for all of it (GUI tests are slow to set up): the parts below."""
    _docks_fit_tabs_read_and_titles_do_not_overlap(topo)
    _drop_picture_without_dialog_in_mm_with_patch_table(topo, tmp_path, notes)
    _workspace_round_trip_through_the_file_menu(topo, tmp_path, notes, monkeypatch)


def _docks_fit_tabs_read_and_titles_do_not_overlap(topo):
    from qtpy.QtGui import QFont, QFontMetrics
    from qtpy.QtWidgets import QScrollArea, QTabBar

    win = topo.viewer.window._qt_window
    bars = [tb for tb in win.findChildren(QTabBar) if tb.isVisible() and tb.count() == len(DOCKS)]
    assert len(bars) == 1 and bars[0].tabText(bars[0].currentIndex()) == "Model"  # Model & maps in front
    for size in ((1600, 1000), (1280, 800)):
        win.resize(*size)
        _pump()
        for name, dock in topo.docks.items():
            _dock_frame(dock).raise_()
            _pump(0.05)
            scroll = dock.findChild(QScrollArea)
            hint, view = scroll.widget().sizeHint(), scroll.viewport()
            assert hint.height() <= view.height(), (size, name, hint, view.size())  # no control scrolled away
            assert scroll.widget().minimumSizeHint().width() <= view.width(), (size, name)
        tabs = [tb for tb in win.findChildren(QTabBar) if tb.isVisible() and tb.count() == len(DOCKS)]
        assert len(tabs) == 1
        bar = tabs[0]
        assert [bar.tabText(i) for i in range(bar.count())] == [TAB_TITLES.get(n, n) for n in DOCKS]
        # vertical tabs, all within the bar, none elided: each tab as long as its name
        assert bar.shape().name.endswith("East")
        assert bar.tabRect(bar.count() - 1).bottom() <= bar.height()
        fm = bar.fontMetrics()
        for i in range(bar.count()):
            assert bar.tabRect(i).height() >= fm.horizontalAdvance(bar.tabText(i)), bar.tabText(i)
        # cell titles: each fits its cell plus the gap on screen (napari draws them at 8 pt)
        topo.book.fit()
        _pump()
        zoom = topo.viewer.camera.zoom  # screen px per world unit
        layout, cells = topo.book.layout, topo.book.get("layout/cells")
        room = (layout.cell_w + layout.gap) * zoom
        font = QFont()
        font.setPointSize(8)
        widest = max(QFontMetrics(font).horizontalAdvance(t) for t in cells.features["title"])
        assert widest < room, (size, widest, room)
    # the active layer is a map, not a hidden points layer with editing tools
    assert topo.viewer.layers.selection.active is topo.book.get("fc6/dprime")


def _drop_picture_without_dialog_in_mm_with_patch_table(topo, tmp_path, notes):
    from qtpy.QtCore import QMimeData, QPointF, Qt, QUrl
    from qtpy.QtGui import QDropEvent

    def drop(path):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                           Qt.KeyboardModifier.NoModifier)
        return topo.ctrl.drops.eventFilter(topo.viewer.window._qt_viewer, event)  # True: napari never sees it

    rng = np.random.default_rng(1)
    pic = tmp_path / "face.png"
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(pic)
    assert drop(pic)
    topo.ctrl.wait(60)
    keys = topo.book.keys()
    assert {"input/image", "fc6/activation", "fc7/activation", "fc6/patch_activation"} <= set(keys)
    assert topo.book.get("fc6/patch_activation").visible  # outlined once the cell shows a map
    assert not topo.book.get("fc6/patch_stimulation").visible  # nothing stimulated yet: no outline
    for layer in topo.viewer.layers:  # mm everywhere: the scale bar stays in mm
        assert tuple(str(u) for u in layer.units)[-2:] == ("millimeter", "millimeter"), layer.name
    layers = list(topo.viewer.layers)
    assert layers.index(topo.book.get("fc6/patch_activation")) > layers.index(topo.book.get("fc6/activation"))
    # the Images dock: picture and network input side by side, and the patch table (2 sheets × categories)
    dock, st = topo.docks["ImagesDock"], topo.state
    assert not dock.photo_view.pixmap().isNull() and not dock.input_view.pixmap().isNull()
    seen = st.model.input_pixels(st.activations.images[None])[0].mean(0).numpy()
    np.testing.assert_allclose(st.activations.network_input, seen, atol=1e-6)
    assert dock.table.rowCount() == 2 * len(st.categories)
    csv = dock.save_table(tmp_path / "table.csv")
    assert csv.read_text().splitlines()[1].startswith("face.png,fc6,")
    # an empty folder: one notification naming it, nothing else happens
    empty = tmp_path / "empty"
    empty.mkdir()
    assert drop(empty)
    assert f"no pictures in {empty}" in notes()


def _file_menu_action(viewer, text):
    """The QAction the plugin adds to napari's File menu (File ▸ IO Utilities ▸ TEXT (topoviewer))."""
    menus = [viewer.window.file_menu]
    while menus:
        for action in menus.pop().actions():
            if action.menu() is not None:
                menus.append(action.menu())
            elif action.text() == f"{text} (topoviewer)":
                return action
    raise AssertionError(f"no File menu entry {text!r}")


def _workspace_round_trip_through_the_file_menu(topo, tmp_path, notes, monkeypatch):
    from topoviewer_napari._qt import export_dock

    st, ctrl, stim_dock, model_dock = topo.state, topo.ctrl, topo.docks["StimulateDock"], topo.docks["ModelDock"]
    save = _file_menu_action(topo.viewer, "Save topoviewer workspace…")
    restore = _file_menu_action(topo.viewer, "Open topoviewer workspace…")
    st.set_thresholds(dprime=0.7, t=5.0)
    st.set_category("bodies")
    stim_dock.radius.value = 1.75  # the dock's widget sets the state's radius
    assert st.stim_radius_mm == 1.75
    ctrl.run_images(np.random.default_rng(2).random((4, 32, 32), np.float32), "stack", labels=[0, 0, 1, 1],
                    categories=["faces", "bodies"])
    ctrl.wait(60)
    ctrl.stimulate_at("fc6", (1.0, 1.0))
    # File ▸ Save…: the save dialog answers "session" (no suffix: .json is added)
    monkeypatch.setattr(export_dock, "ask_save_path", lambda *args: str(tmp_path / "session"))
    save.trigger()
    path = tmp_path / "session.json"
    assert path.is_file() and (tmp_path / "session.npz").is_file()
    saved_images, saved_log = st.activations.images.copy(), [dict(r) for r in st.log]
    # other settings before restoring (set directly: each redraw of every map costs seconds here)
    st.threshold, st.t_threshold, st.category = 0.85, 10.0, "faces"
    st.set_stim_radius(0.5)
    assert stim_dock.radius.value == 0.5  # the dock follows the state
    st.clear_log()
    st.set_activations(None)
    # File ▸ Open…: the open dialog answers the saved file; the model on screen is the workspace's
    monkeypatch.setattr(export_dock, "ask_open_path", lambda *args: str(path))
    restore.trigger()
    ctrl.wait(60)
    assert (st.threshold, st.t_threshold, st.category, st.stim_radius_mm) == (0.7, 5.0, "bodies", 1.75)
    assert st.log == saved_log and len(st.log) == 1
    np.testing.assert_array_equal(st.activations.images, saved_images)
    assert st.activations.contrast_category == "bodies" and topo.book.get("fc6/contrast") is not None
    # the docks show what was restored
    assert stim_dock.radius.value == 1.75 and stim_dock.table.rowCount() == 1
    assert model_dock.category.currentText() == "bodies"
    assert (model_dock.dprime_threshold.value(), model_dock.t_threshold.value()) == (0.7, 5.0)
    with pytest.raises(Exception, match="already exists"):
        from topoviewer.workspace import save_workspace

        save_workspace(st.workspace(), path)
    _workspace_of_another_model(topo, tmp_path, notes, monkeypatch, path, restore)


def _workspace_of_another_model(topo, tmp_path, notes, monkeypatch, path, restore):
    """A workspace saved with another model: refused in one notification when that model is gone
    (nothing of it applied), opened and then restored when it is there."""
    import json

    from topoviewer.io import save_model
    from topoviewer.workspace import model_hash
    from topoviewer_napari._qt import export_dock

    st, ctrl = topo.state, topo.ctrl
    other = save_model(st.model, tmp_path / "other.safetensors", training={"note": "another file"})
    head = json.loads(path.read_text())
    head.update(model=str(other), model_sha256=model_hash(str(other)), category="faces", fwhm_mm=2.5,
                stim_radius_mm=2.5, log=[dict(head["log"][0], x_mm=-3.0, model=str(other))])
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(head))
    (tmp_path / "moved.npz").write_bytes((tmp_path / "session.npz").read_bytes())
    monkeypatch.setattr(export_dock, "ask_open_path", lambda *args: str(moved))
    before = (st.source, st.category, st.stim_radius_mm, [dict(r) for r in st.log])
    other.rename(tmp_path / "elsewhere.safetensors")
    n0 = len(notes())
    restore.trigger()  # the workspace's model is gone: one notification, the session on screen untouched
    ctrl.wait(60)
    assert notes()[n0:] == [f"the workspace's model {other} is not found; expected the model file with SHA-256 "
                            f"{head['model_sha256'][:12]}… (open it, or a copy of it, first, then the workspace)"]
    assert (st.source, st.category, st.stim_radius_mm, st.log) == before
    (tmp_path / "elsewhere.safetensors").rename(other)
    jobs = []
    ctrl.events.job_done.connect(lambda name, ok: jobs.append((name, ok)))
    restore.trigger()  # there it is: it is opened, analysed with the workspace's settings, then the pictures run
    ctrl.wait(60)
    assert st.source == str(other) and st.analysis is not None
    assert jobs == [("load", True), ("analysis", True), ("images", True)]  # no second pass at another FWHM
    assert (st.category, st.fwhm_mm, st.stim_radius_mm) == ("faces", 2.5, 2.5)
    assert (topo.docks["StimulateDock"].radius.value, topo.docks["ModelDock"].fwhm.value()) == (2.5, 2.5)
    assert [r["x_mm"] for r in st.log] == [-3.0] and st.activations.images.shape == (4, 32, 32)
