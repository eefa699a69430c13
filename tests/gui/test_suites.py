"""The Suites dock: an analysis suite run from its form in a worker, its numbers in the table and
along the hierarchy, a lesion's units coloured on the sheets, a suite the model cannot run as one
notification; a drawn region lesioned and restored, and a lesion waiting for a forward pass in
flight; matched neurons as points with tuning curves."""

import threading

import numpy as np
from PIL import Image

from topoviewer.analysis.lesion import lesion_effect
from topoviewer.stimuli import DIET_CATEGORIES, load_folder
from topoviewer.suites import run_suite


def _cells(table):
    return [[table.item(i, j).text() for j in range(table.columnCount())] for i in range(table.rowCount())]


def _fmt(v):
    return "—" if v is None else f"{v:.3g}"


def _run(topo, **values):
    dock = topo.docks["SuitesDock"]
    for k, v in values.items():
        getattr(dock.form, k).value = v
    dock.form.call_button.native.click()
    topo.ctrl.wait(60, names=["suite"])
    return dock


def _z(x):
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean()) / x.std()


def test_suites_dock_runs_invariance_and_lesion(topo, notes, tmp_path):
    model = topo.state.model
    dock = _run(topo, suite="invariance")
    want = run_suite("invariance", model)  # the core, same inputs (its defaults), computed here
    rows = []
    for name, s in want["sheets"].items():
        for label, v in ((name, s), (f"{name} face patch", s["face_patch"])):
            pop = v["population"]
            rows.append([label, str(v["units"]), _fmt(v["identity_width_mean"]), _fmt(v["orientation_depth_sd"]),
                         _fmt(pop["identity"]), _fmt(pop["view"]), _fmt(pop["mirror"])])
    assert _cells(dock.table) == rows
    # the per-sheet curves: the suite's population indices in network order, over all units and the face patch
    assert len(dock.curves) == 6
    for key in ("identity", "view", "mirror"):
        for label, part in ((f"{key} index", lambda s: s), (f"{key} index, face patch", lambda s: s["face_patch"])):
            x, y = dock.curves[label].getData()
            np.testing.assert_array_equal(x, np.arange(len(want["sheets"])))
            np.testing.assert_allclose(y, [part(s)["population"][key] for s in want["sheets"].values()])
    assert not dock.form.random_lesions.visible  # lesion options only for the lesion suite

    # the tiny model's classifier has no class names: one notification, the table keeps its numbers
    _run(topo, suite="lesion", random_lesions=1)
    missing = ", ".join(topo.state.stimuli.categories)  # the localizer's, as the lesion suite's set
    assert notes() == [f"the model's classifier has no class {missing} (its classes: none recorded)"]
    assert _cells(dock.table) == rows and not topo.ctrl.jobs

    classes, model.classes = model.classes, list(DIET_CATEGORIES[:20])  # its 20 outputs, named (undone below:
    try:                                                                 # the model is the session's)
        _run(topo, suite="lesion", random_lesions=1, control="units", seed=3)
        want = run_suite("lesion", model, n_random=1, control="units", seed=3)
    finally:
        model.classes = classes
    rows = [[name, c, str(s["units"]), _fmt(v["before"]), _fmt(v["after"]), _fmt(v["random_mean"]), _fmt(v["p"])]
            for name, s in want["sheets"].items() for c, v in s["categories"].items()]
    assert _cells(dock.table) == rows
    for name, s in want["sheets"].items():  # the silenced units (3 mm around the face peak) coloured 1
        sheet = model.sheet(name)
        inside = np.hypot(*(sheet.positions - s["patch_centre_mm"]).T) <= 3.0
        assert inside.sum() == s["units"] > 0
        layer = topo.book.get(f"{name}/units")
        assert layer.visible and "lesioned faces patch" in layer.name
        np.testing.assert_array_equal(layer.features["value"].to_numpy(), inside.astype(float))

    _identity_suite(topo)
    _lesion_a_drawn_region(topo, dock, notes)
    _lesion_waits_for_a_forward_pass(topo)
    _match_neurons(topo, dock, tmp_path)
    _workspace_keeps_the_lesion_and_the_matches(topo, dock, tmp_path, notes)


def _identity_suite(topo):
    """The identity suite on a small face-identities set: the table and the curves are the core's numbers."""
    options = {"identities": 4, "per_identity": 6, "folds": 3, "seed": 1}
    dock = _run(topo, suite="identity", transforms=["invert"], **options)
    assert dock.form.folds.visible and not dock.form.random_lesions.visible
    want = run_suite("identity", topo.state.model, transforms=("invert",), **options)
    assert set(dock.result["sheets"][topo.state.model.sheet_names[0]]["decoding"]) == {"original", "invert"}
    rows = []
    for name, s in want["sheets"].items():
        dec = s["decoding"]["original"]
        rows.append([name, str(s["units"]), _fmt(s["selective"]), _fmt(s["single_identity"]),
                     _fmt(s["multiple_identity"]), _fmt(dec["all"]["accuracy"]), _fmt(dec["selective"]["accuracy"]),
                     _fmt(dec["non_selective"]["accuracy"])])
    assert _cells(dock.table) == rows
    assert list(dock.curves) == ["selective share", "decoding all", "decoding selective", "decoding non-selective"]
    y = dock.curves["decoding all"].getData()[1]
    np.testing.assert_allclose(y, [s["decoding"]["original"]["all"]["accuracy"] for s in want["sheets"].values()])


def _lesion_a_drawn_region(topo, dock, notes):
    """A rectangle drawn on the first sheet's activation cell: its units silenced, the accuracy table of
    lesion_effect, the activations of the lesioned model; Restore gives the intact ones back."""
    model, ctrl = topo.state.model, topo.ctrl
    sheet = model.sheets[0]
    picture = np.random.default_rng(4).uniform(0, 1, (32, 32)).astype(np.float32)
    ctrl.run_images(picture, "picture")
    ctrl.wait(30, names=["images"])
    intact = model.responses(picture[None])

    dock.lesion_form.call_button.native.click()  # nothing drawn yet: one notification, nothing runs
    assert notes()[-1] == "no region drawn: press “Draw region” and draw a polygon on a sheet's map"
    assert "suite" not in ctrl.jobs
    dock.draw_button.click()
    regions = topo.book.get("lesion/regions")
    assert regions.mode == "add_polygon" and topo.viewer.layers.selection.active is regions
    (x0, y0), (w, h) = sheet.origin_mm, sheet.extent_mm
    lo, hi = np.array([x0 + 0.2 * w, y0 + 0.3 * h]), np.array([x0 + 0.6 * w, y0 + 0.8 * h])
    corners = np.array([lo, [hi[0], lo[1]], hi, [lo[0], hi[1]]])
    regions.add_rectangles(topo.book.layout.to_world(sheet.name, "activation", corners))
    inside = np.all((sheet.positions > lo) & (sheet.positions < hi), axis=1)  # by hand: inside the rectangle
    dock.lesion_form.call_button.native.click()  # the tiny model's classes have no names: nothing lesioned
    ctrl.wait(60, names=["suite"])
    assert notes()[-1].startswith("the model's classifier has no class faces")
    assert ctrl.lesion is None and dock.lesion_note.text() == "Intact model."

    with model.lesion(sheet.name, inside):
        lesioned = model.responses(picture[None])
    classes, model.classes = model.classes, list(DIET_CATEGORIES[:20])
    try:
        want = lesion_effect(model, sheet.name, inside, topo.state.stimuli, n_random=1, seed=2,  # the localizer
                             control="units").summary()
        for k, v in {"random_lesions": 1, "control": "units", "seed": 2}.items():
            getattr(dock.lesion_form, k).value = v
        dock.lesion_form.call_button.native.click()
        ctrl.wait(60, names=["suite"])
        ctrl.wait(30, names=["images"])  # the picture again, through the lesioned model
    finally:
        model.classes = classes
    rows = [[sheet.name, c, str(want["units"]), _fmt(v["before"]), _fmt(v["after"]), _fmt(v["random_mean"]),
             _fmt(v["p"])] for c, v in want["categories"].items()]
    assert _cells(dock.table) == rows and want["units"] == inside.sum() > 0
    assert "Lesioned" in dock.lesion_note.text() and dock.restore_button.isEnabled()
    layers = topo.viewer.layers  # the drawn region stays visible above the activation maps drawn again
    assert layers.index(regions) > max(layers.index(topo.book.get(f"{n}/activation")) for n in model.sheet_names)
    np.testing.assert_array_equal(ctrl.lesion[sheet.name], inside)
    layer = topo.book.get(f"{sheet.name}/units")
    assert layer.visible and "lesioned region" in layer.name
    np.testing.assert_array_equal(layer.features["value"].to_numpy(), inside.astype(float))
    act = topo.state.activations.mean
    assert (act[sheet.name][inside] == 0).all() and (intact[sheet.name][0][inside] > 0).any()
    for name in model.sheet_names:  # the lesioned model's activations, downstream too
        np.testing.assert_allclose(act[name], lesioned[name][0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(act[model.sheet_names[-1]], intact[model.sheet_names[-1]][0])

    dock.restore_button.click()
    ctrl.wait(30, names=["images"])
    assert ctrl.lesion is None and not dock.restore_button.isEnabled() and dock.lesion_note.text() == "Intact model."
    for name in model.sheet_names:
        np.testing.assert_allclose(topo.state.activations.mean[name], intact[name][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(layer.features["value"].to_numpy(), topo.state.dprime(sheet.name))
    topo.viewer.layers.remove(regions)


def _lesion_waits_for_a_forward_pass(topo):
    """A lesion applied while a forward pass is in flight waits for it: the pass sees the intact model in
    every batch, then the pictures run again through the lesioned model."""
    model, ctrl = topo.state.model, topo.ctrl
    sheet = model.sheets[0]
    units = {sheet.name: np.arange(sheet.n_units) % 2 == 0}
    pictures = np.random.default_rng(5).uniform(0, 1, (4, 32, 32)).astype(np.float32)
    intact = model.responses(pictures)
    with model.lesion(sheet.name, units[sheet.name]):
        lesioned = model.responses(pictures)
    between, go = threading.Event(), threading.Event()

    def paused(images, sheets=None, batch_size=256):  # the model's own pass in batches of 2, held between them
        gen = real(images, sheets, batch_size=2)
        first = next(gen)
        if not between.is_set():
            between.set()
            go.wait(30)
        yield first
        return (yield from gen)

    seen = []  # the mean activations of each pass, as they reach the state
    record = lambda state: seen.append(state.activations.mean)  # noqa: E731
    topo.state.events.activations_changed.connect(record)
    real, model.iter_responses = model.iter_responses, paused
    try:
        ctrl.run_images(pictures, "stack")
        assert between.wait(30)
        ctrl.apply_lesion(units)  # the first batch is done, the second not yet
        assert ctrl.lesion is None and not getattr(model.net, "lesions", None)  # waits for the pass
        go.set()
        ctrl.wait(60)
    finally:
        del model.iter_responses
        topo.state.events.activations_changed.disconnect(record)
    np.testing.assert_array_equal(ctrl.lesion[sheet.name], units[sheet.name])
    assert len(seen) == 2  # the held pass (intact in both batches), then the pictures through the lesioned model
    for name in model.sheet_names:
        np.testing.assert_allclose(seen[0][name], intact[name].mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(seen[1][name], lesioned[name].mean(axis=0), rtol=1e-5, atol=1e-6)
        assert not np.allclose(seen[1][name], seen[0][name])
    ctrl.restore_lesion()
    ctrl.wait(60)
    assert ctrl.lesion is None and not getattr(model.net, "lesions", None)
    for name in model.sheet_names:
        np.testing.assert_allclose(topo.state.activations.mean[name], intact[name].mean(axis=0), rtol=1e-5, atol=1e-6)


def _match_neurons(topo, dock, tmp_path):
    """Neurons made of two known units plus noise: points at those units, the tuning curves their responses."""
    model = topo.state.model
    rng = np.random.default_rng(0)
    for cat in ("b", "a", "c"):
        (tmp_path / "stim" / cat).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(tmp_path / "stim" / cat / f"{i}.png")
    stimuli = load_folder(tmp_path / "stim", size=32)
    resp = model.responses(stimuli.images)
    first, last = model.sheet_names[0], model.sheet_names[-1]
    truth = [(first, 17), (last, 100)]
    signal = np.column_stack([_z(resp[s][:, u]) for s, u in truth])
    neural = signal[:, :, None] + 0.01 * rng.normal(size=(15, 2, 2))
    np.savez(tmp_path / "neurons.npz", responses=neural)
    form = dock.match_form
    form.neural.value, form.stimuli.value, form.permutations.value = tmp_path / "neurons.npz", tmp_path / "stim", 20
    form.call_button.native.click()
    topo.ctrl.wait(60, names=["match"])
    layout = topo.book.layout
    for j, (s, u) in enumerate(truth):
        layer = topo.book.get(f"{s}/matched")
        np.testing.assert_allclose(layer.data, [layout.to_world(s, "dprime", model.sheet(s).positions[u])])
        assert list(layer.features["neuron"]) == [j] and layer.features["r"][0] > 0.99
    layer = topo.book.get(f"{last}/matched")
    layer.selected_data = {0}  # the second neuron's point selected: its curves
    x, y = dock.tuning["neuron"].getData()
    np.testing.assert_array_equal(x, np.arange(15))
    np.testing.assert_allclose(y, _z(neural[:, 1].mean(axis=1)))
    np.testing.assert_allclose(dock.tuning["unit"].getData()[1], _z(resp[last][:, 100]), rtol=1e-5, atol=1e-6)
    assert f"neuron 1</b> ↔ {last} unit 100" in dock.tuning_note.text()


def _workspace_keeps_the_lesion_and_the_matches(topo, dock, tmp_path, notes):
    """A saved workspace holds the lesioned units and the matched neurons (file and SHA-256); restoring it
    applies the lesion again and matches the neurons again; a changed neural file shows the saved points."""
    import hashlib
    import json

    from topoviewer.workspace import load_workspace

    model, ctrl, book = topo.state.model, topo.ctrl, topo.book
    sheet = model.sheets[-1]
    mask = np.zeros(sheet.n_units, bool)
    mask[[5, 50, 200]] = True
    ctrl.apply_lesion({sheet.name: mask})
    ctrl.wait(60)
    path = ctrl.save_workspace(tmp_path / "session.json")
    head = json.loads(path.read_text())
    neural = tmp_path / "neurons.npz"
    assert head["lesion"] == {sheet.name: [5, 50, 200]}
    assert head["matches"]["neural"] == str(neural.resolve())
    assert head["matches"]["neural_sha256"] == hashlib.sha256(neural.read_bytes()).hexdigest()
    points = {n: book.get(f"{n}/matched").data.copy() for n in model.sheet_names}

    ctrl.restore_lesion()  # the session changed since: intact, no matched points
    book.remove(lambda key: key.endswith("/matched"))
    dock.matched = None
    ctrl.wait(60)
    assert ctrl.lesion is None and dock.lesion_note.text() == "Intact model."
    ctrl.restore_workspace(path)
    ctrl.wait(60)
    np.testing.assert_array_equal(ctrl.lesion[sheet.name], mask)
    assert "Lesioned" in dock.lesion_note.text() and dock.restore_button.isEnabled()
    for name, data in points.items():  # matched again: the same points, the tuning curves at hand
        np.testing.assert_allclose(book.get(f"{name}/matched").data, data)
    assert dock.matched is not None and dock.matched[0]["neurons"] == head["matches"]["result"]["neurons"]

    ctrl.restore_lesion()
    ctrl.wait(60)
    # the neural file changed since: one notification, the saved matches as points (the lesion and matches
    # part of a restore, on the intact model: the rest of the restore was checked above)
    book.remove(lambda key: key.endswith("/matched"))
    neural.write_bytes(b"changed")
    ws = load_workspace(path)
    ws.lesion = {}
    ctrl._restore_lesion_and_matches(ws)
    ctrl.wait(60)
    assert notes()[-1].startswith(f"neural responses {neural.resolve()} have changed since the workspace was saved")
    for name, data in points.items():
        np.testing.assert_allclose(book.get(f"{name}/matched").data, data)
    assert ctrl.lesion is None
