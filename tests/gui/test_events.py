"""Events and progress inside a viewer: psygnal listeners, napari's progress bars, errors as notifications."""

from napari.utils import progress

from topoviewer.errors import TopoviewerError


def test_background_work_is_a_napari_progress_bar_per_task(topo, qtbot):
    st, ctrl = topo.state, topo.ctrl
    st.report("images", 1, 4, "forward pass: x.png")
    assert "images" not in ctrl.progress  # shown on the next event-loop turn, never inside a worker callback
    qtbot.waitUntil(lambda: "images" in ctrl.progress, timeout=5000)
    bar = ctrl.progress["images"]
    assert isinstance(bar, progress) and bar in progress._all_instances
    assert (bar.n, bar.total) == (1, 4) and bar.desc.startswith("forward pass: x.png")
    st.report("images", 2, 8, "forward pass: y.png")
    st.report("images", 3, 8, "forward pass: y.png")  # coalesced: the same bar shows the latest
    qtbot.waitUntil(lambda: bar.n == 3, timeout=5000)
    assert ctrl.progress["images"] is bar and bar.total == 8
    assert bar.desc.startswith("forward pass: y.png")
    st.report("images", 0, 0, "")  # finished
    qtbot.waitUntil(lambda: "images" not in ctrl.progress, timeout=5000)
    assert bar not in progress._all_instances


def test_a_listener_user_error_is_one_notification_and_the_viewer_keeps_working(topo, notes):
    st, dock = topo.state, topo.docks["ModelDock"]

    def refuse(state):
        raise TopoviewerError("the category cannot be shown")

    st.events.category_changed.connect(refuse)
    other = next(c for c in st.categories if c != st.category)
    dock.category.setCurrentText(other)  # the dock → state.set_category → category_changed → refuse
    assert [m for m in notes() if "cannot be shown" in m] == ["the category cannot be shown"]
    st.events.category_changed.disconnect(refuse)
    assert topo.ctrl.stimulate_at("fc6", (5.0, 5.0)) is not None
