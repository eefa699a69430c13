"""1. Start: the command, the docks, the sample menu (the manifest and life without a display:
tests/plugin/test_launch.py)."""

from pathlib import Path

from topoviewer_napari import DOCKS


def test_start_opens_docks_and_maps(make_napari_viewer, tiny_model_file):
    from types import SimpleNamespace

    from topoviewer_napari.launch import open_viewer

    viewer = make_napari_viewer(show=True)
    activations = []
    viewer.layers.selection.events.active.connect(lambda e: activations.append(e.value))
    viewer, ctrl = open_viewer(str(tiny_model_file), viewer=viewer)  # the start command's path
    ctrl.wait(120)
    # the book's ~20 layers arrive unselected (each change of the active layer rebuilds the canvas
    # overlays); the first d′ map is made active once, at the end
    assert activations == [ctrl.book.get("fc6/dprime")], [getattr(a, "name", a) for a in activations]
    topo = SimpleNamespace(viewer=viewer, state=ctrl.state, docks=ctrl.docks)
    v, st = topo.viewer, topo.state
    assert st.analysis is not None and st.source == str(tiny_model_file)
    assert set(topo.docks) >= {"ModelDock", "PurityDock", "ImagesDock", "StimulateDock", "TrainDock", "SuitesDock",
                               "ExportDock"}
    assert len(DOCKS) == 7
    names = [layer.name for layer in v.layers]
    for sheet in ("fc6", "fc7"):
        for expected in (f"{sheet} · d′ faces", f"{sheet} · voxel t faces", f"{sheet} · patch t>10 faces",
                         f"{sheet} · purity rings faces", f"{sheet} · units (d′ faces)"):
            assert expected in names
    assert "layout · cells" in names
    # every layer in mm (else napari's scale bar falls back to pixels), scale bar on
    for layer in v.layers:
        assert tuple(str(u) for u in layer.units) == ("millimeter", "millimeter"), layer.name
    assert v.canvas.overlays.scale_bar.visible
    # the picture is on screen: the canvas is not blank
    shot = v.screenshot(canvas_only=True)
    assert shot[..., :3].std() > 5
    ctrl.close()


def test_sample_menu_opens_the_default_model(make_napari_viewer, monkeypatch, tiny_model_file, qtbot):
    import topoviewer.io

    monkeypatch.setattr(topoviewer.io, "sample_path", lambda name="sample": Path(tiny_model_file))
    from topoviewer_napari._qt.controller import controller_for

    viewer = make_napari_viewer(show=True)
    added = viewer.open_sample("topoviewer", "default_model")
    # napari gets a placeholder at once; the model loads and is analysed in a thread worker
    assert [layer.name for layer in added] == ["topoviewer · loading the default model…"]
    ctrl = controller_for(viewer)
    assert "load" in ctrl.jobs or "analysis" in ctrl.jobs
    ctrl.wait(120)
    assert ctrl.state.model is not None and ctrl.state.source == "sample"
    assert ctrl.state.analysis is not None
    keys = ctrl.book.keys()
    assert keys.count("layout/cells") == 1 and "sample/loading" not in keys
    assert "fc6/dprime" in keys
    # the same complete set of docks as topoviewer-napari, and a map as the active layer
    assert set(ctrl.docks) == {"ModelDock", "PurityDock", "ImagesDock", "StimulateDock", "TrainDock", "SuitesDock",
                               "ExportDock"}
    assert viewer.layers.selection.active is ctrl.book.get("fc6/dprime")
    ctrl.close()
