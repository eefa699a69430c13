"""The Suites dock: an analysis suite run from its form in a worker, its numbers in the table, a
lesion's units coloured on the sheets, a suite the model cannot run as one notification."""

import numpy as np

from topoviewer.stimuli import DIET_CATEGORIES
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


def test_suites_dock_runs_invariance_and_lesion(topo, notes):
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
