"""1. Start: the command, the docks, the sample menu (the manifest and life without a display:
tests/plugin/test_launch.py)."""

from pathlib import Path

from topoviewer_napari import DOCKS


def test_start_opens_docks_and_maps(make_napari_viewer, tiny_model_file, tiny_analysed, tmp_path, monkeypatch, qtbot,
                                    notes):
    from types import SimpleNamespace

    import numpy as np

    from topoviewer.cache import cached_analysis
    from topoviewer_napari._qt.controller import controller_for
    from topoviewer_napari.launch import START_STIMULI, Preload, open_viewer
    from topoviewer_napari.layout import SheetLayout

    # the start command's path with a file analysed before: the cached d′ maps are the first picture, drawn
    # before the model is loaded (no torch on that path); the docks come after them
    monkeypatch.setenv("TOPOVIEWER_CACHE_DIR", str(tmp_path))
    model, stimuli, analysis = tiny_analysed
    cached_analysis(model, tiny_model_file, START_STIMULI, lambda: stimuli)
    viewer = make_napari_viewer(show=True)
    activations = []
    viewer.layers.selection.events.active.connect(lambda e: activations.append(e.value))
    first = {}

    def on_picture():
        first.update(model=ctrl.state.model, docks=dict(ctrl.docks), keys=sorted(ctrl.book.keys()),
                     layers={k: ctrl.book.get(k) for k in ctrl.book.keys()})
        first["data"] = {k: np.array(layer.data) for k, layer in first["layers"].items()}
        first["suite"] = ctrl.run_suite("invariance")  # the preview is shown, the model not in yet

    assert controller_for(viewer).run_suite("invariance") is None  # nothing opened at all
    assert notes() == ["no model is loaded: open a model file or the default model first"]
    preload = Preload(str(tiny_model_file))
    viewer, ctrl = open_viewer(str(tiny_model_file), viewer=viewer, preload=preload, on_picture=on_picture)
    qtbot.waitUntil(lambda: ctrl.state.analysis is not None, timeout=120_000)
    ctrl.wait(120)
    assert first["model"] is None and first["docks"] == {} and first["suite"] is None
    assert notes()[1] == "the model is still loading (the maps are a preview): try again in a moment"
    assert first["keys"] == ["fc6/dprime", "fc7/dprime"]
    for key, data in first["data"].items():
        name = key.split("/")[0]
        expected = SheetLayout.display(model.sheet(name).rasterise(analysis.sheets[name].dprime["faces"]))
        np.testing.assert_array_equal(data, expected)
        # the model's arrival updated the preview's layers in place: the same layer objects, the same maps
        assert ctrl.book.get(key) is first["layers"][key]
        np.testing.assert_array_equal(ctrl.book.get(key).data, data)
    assert ctrl.first_picture_at is not None
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
    # the heap alive once the maps are in is kept out of full collections (they stalled the event loop)
    import gc

    assert gc.get_freeze_count() > 10_000
    ctrl.close()
    assert gc.get_freeze_count() == 0


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
