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


def test_first_run_drop_patch_table_and_workspace(topo, tmp_path, notes):
    """One viewer for all of it (GUI tests are slow to set up): the four parts below."""
    _docks_fit_tabs_read_and_titles_do_not_overlap(topo)
    _drop_picture_without_dialog_in_mm_with_patch_table(topo, tmp_path, notes)
    _workspace_round_trip_in_the_viewer(topo, tmp_path)


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


def _workspace_round_trip_in_the_viewer(topo, tmp_path):
    st, ctrl = topo.state, topo.ctrl
    st.set_thresholds(dprime=0.7, t=5.0)
    st.set_category("bodies")
    ctrl.run_images(np.random.default_rng(2).random((4, 32, 32), np.float32), "stack", labels=[0, 0, 1, 1],
                    categories=["faces", "bodies"])
    ctrl.wait(60)
    ctrl.stimulate_at("fc6", (1.0, 1.0))
    path = ctrl.save_workspace(tmp_path / "session.json")
    saved_images, saved_log = st.activations.images.copy(), [dict(r) for r in st.log]
    # other settings before restoring (set directly: each redraw of every map costs seconds here)
    st.threshold, st.t_threshold, st.category = 0.85, 10.0, "faces"
    st.clear_log()
    st.set_activations(None)
    ctrl.restore_workspace(path)  # the model on screen is the workspace's: its analysis is kept
    ctrl.wait(60)
    assert (st.threshold, st.t_threshold, st.category) == (0.7, 5.0, "bodies")
    assert st.log == saved_log and len(st.log) == 1
    np.testing.assert_array_equal(st.activations.images, saved_images)
    assert st.activations.contrast_category == "bodies" and topo.book.get("fc6/contrast") is not None
    with pytest.raises(Exception, match="already exists"):
        from topoviewer.workspace import save_workspace

        save_workspace(st.workspace(), path)
