"""Regenerate the screenshots of docs/gui.md from the running plugin (and print the measured numbers).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/images/make_screenshots.py [MODEL] [--skip-train]

MODEL defaults to the embedded default model ("sample"). Every picture is a grab of the
real napari window driven through the plugin's own widgets and callbacks. ``--skip-train``
leaves out the training run (and its screenshot, ``train.png``).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/images/make_screenshots.py early MODEL

grabs only ``early.png``: the early visual maps (Gratings button) of MODEL's first sheet, hovered.

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/images/make_screenshots.py suites [MODEL]

grabs only the Suites dock's pictures: ``suites.png`` (the lesion suite, the lesioned units shown),
``suites-curves.png`` (the invariance suite per sheet), ``suites-region.png`` (a drawn region lesioned,
a face's activation through the lesioned model) and ``suites-neurons.png`` (synthetic neurons, made of
known units plus noise, matched and shown as points, one neuron's tuning curves).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/images/make_screenshots.py train [MODEL]

grabs only ``train.png``: a short training run with its maps refreshed live.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def pump(seconds=0.3):
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def grab(viewer, name, crop=None):
    pump(0.5)
    img = viewer.window._qt_window.grab().toImage()
    path = HERE / name
    img.save(str(path))
    if crop:
        with Image.open(path) as im:
            im.crop(crop).save(path)
    print(f"wrote {path}")


def show_dock(ctrl, name):
    widget = ctrl.docks[name]
    w = widget
    while w is not None and type(w).__name__ != "QtViewerDockWidget":
        w = w.parent()
    if w is not None:
        w.raise_()
    pump(0.2)


def _open(model):
    """The plugin on ``model`` in a 1600 × 1000 window, the dock stack 450 px wide."""
    from topoviewer_napari.launch import open_viewer

    viewer, ctrl = open_viewer(model)
    viewer.window._qt_window.resize(1600, 1000)
    viewer.window._qt_window.move(0, 0)
    ctrl.wait(180)
    from qtpy.QtCore import Qt

    win = viewer.window._qt_window
    model_dock = ctrl.docks["ModelDock"].parent()
    while model_dock is not None and type(model_dock).__name__ != "QtViewerDockWidget":
        model_dock = model_dock.parent()
    win.resizeDocks([model_dock], [450], Qt.Orientation.Horizontal)  # the one tab stack of docks
    pump(1.0)
    ctrl.book.fit()
    return viewer, ctrl


def train(model="sample", tmp=None):
    """train.png: a short run of the default recipe's architecture, maps refreshed live."""
    import tempfile

    viewer, ctrl = _open(model)
    tmp = Path(tmp or tempfile.mkdtemp(prefix="topoviewer-shots-"))
    show_dock(ctrl, "TrainDock")
    tdock = ctrl.docks["TrainDock"]
    form = tdock.form
    form.out.value = tmp / "run.safetensors"
    form.steps.value = 120
    form.batch_size.value = 32
    form.per_category.value = 20
    form.device.value = "cpu"
    form.refresh.value = 3.0
    tdock.start()
    t0 = time.monotonic()
    while tdock.finish_reason is None and len(tdock.history["step"]) < 80 and time.monotonic() - t0 < 400:
        pump(0.2)
    grab(viewer, "train.png")
    while tdock.finish_reason is None and time.monotonic() - t0 < 600:
        pump(0.2)
    ctrl.wait(120)
    viewer.close()


def main(model="sample", skip_train=False):
    viewer, ctrl = _open(model)
    st, book = ctrl.state, ctrl.book
    grab(viewer, "start.png")  # the first run as it opens: Model & maps in front
    show_dock(ctrl, "PurityDock")
    grab(viewer, "purity.png")

    # hover read-out + unit points, zoomed on the first sheet's maps
    first = st.model.sheets[0]
    book.get(f"{first.name}/units").visible = True
    y0, x0, y1, x1 = book.layout.extent(("dprime", "voxel_t", "purity"))
    viewer.scene.camera.center = ((y0 + y1) / 2, (x0 + x1) / 2)
    viewer.scene.camera.zoom = 0.9 * min(viewer.canvas.size[0] / (y1 - y0 + 4), viewer.canvas.size[1] / (x1 - x0 + 4))
    curve = st.purity(first.name)
    event = SimpleNamespace(position=book.layout.to_world(first.name, "voxel_t", curve.centre), type="mouse_move")
    book._on_hover(viewer, event)
    grab(viewer, "maps.png")
    viewer.canvas.overlays.text.visible = False
    book.get(f"{first.name}/units").visible = False

    # a user picture, then a folder with two categories
    from topoviewer.stimuli import localizer

    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="topoviewer-shots-"))
    loc = localizer(size=96, per_category=6, seed=7)
    Image.fromarray((loc.images[0] * 255).astype(np.uint8)).save(tmp / "face.png")
    for c in ("faces", "places"):
        (tmp / "folder" / c).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(loc.images[loc.mask(c)]):
            Image.fromarray((img * 255).astype(np.uint8)).save(tmp / "folder" / c / f"{i}.png")
    ctrl.book.fit()
    show_dock(ctrl, "ImagesDock")
    viewer.open(str(tmp / "face.png"), plugin="topoviewer")
    ctrl.wait(60)
    grab(viewer, "images.png")
    viewer.open(str(tmp / "folder"), plugin="topoviewer")
    ctrl.wait(60)
    grab(viewer, "folder.png")

    # stimulation: one click inside the patch, then inside vs outside
    show_dock(ctrl, "StimulateDock")
    dock = ctrl.docks["StimulateDock"]
    dock.tool_button.click()
    stim = st.stimulator(first.name)
    world = book.layout.to_world(first.name, "dprime", stim.site("inside"))
    ctrl.tool.on_mouse(viewer, SimpleNamespace(position=world, type="mouse_press", button=1, modifiers=()))
    lat = []
    for i in range(20):
        xy = (first.origin_mm[0] + first.extent_mm[0] * (0.2 + 0.03 * i), first.origin_mm[1] + first.extent_mm[1] / 2)
        t0 = time.perf_counter()
        ctrl.tool.on_mouse(viewer, SimpleNamespace(position=book.layout.to_world(first.name, "dprime", xy),
                                                   type="mouse_press", button=1, modifiers=()))
        lat.append(1000 * (time.perf_counter() - t0))
        pump(0.05)
    ctrl.tool.on_mouse(viewer, SimpleNamespace(position=world, type="mouse_press", button=1, modifiers=()))
    grab(viewer, "stimulate.png")
    dock.io_button.click()
    grab(viewer, "inside_outside.png")
    print(f"click-to-updated-layer latency: median {np.median(lat):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms, "
          f"max {np.max(lat):.1f} ms over {len(lat)} clicks")
    dock.tool_button.click()

    # export
    show_dock(ctrl, "ExportDock")
    edock = ctrl.docks["ExportDock"]
    edock.save_figure(HERE / "figure-example.png", dpi=110)
    grab(viewer, "export.png")
    lesion_suite(viewer, ctrl)

    viewer.close()
    if not skip_train:
        train(model, tmp)


def early(model):
    """The early visual map layers of ``model`` (the Gratings button), zoomed on its first sheet."""
    from topoviewer_napari.launch import open_viewer

    viewer, ctrl = open_viewer(model)
    viewer.window._qt_window.resize(1600, 1000)
    ctrl.wait(180)
    ctrl.docks["ModelDock"].gratings_button.click()
    ctrl.wait(180)
    st, book = ctrl.state, ctrl.book
    first = st.model.sheets[0]
    y0, x0, y1, x1 = book.layout.extent(("dprime", "voxel_t", "purity"))
    viewer.scene.camera.center = ((y0 + y1) / 2, (x0 + x1) / 2)
    viewer.scene.camera.zoom = 0.9 * min(viewer.canvas.size[0] / (y1 - y0 + 4), viewer.canvas.size[1] / (x1 - x0 + 4))
    centre = np.asarray(first.origin_mm) + np.asarray(first.extent_mm) / 2
    book._on_hover(viewer, SimpleNamespace(position=book.layout.to_world(first.name, "dprime", centre),
                                           type="mouse_move"))
    grab(viewer, "early.png")
    viewer.close()


def lesion_suite(viewer, ctrl):
    """The Suites dock's lesion suite (3 random lesions), through its form; the lesioned units on the sheets."""
    show_dock(ctrl, "SuitesDock")
    form = ctrl.docks["SuitesDock"].form
    form.suite.value = "lesion"
    form.random_lesions.value = 3
    t0 = time.perf_counter()
    form.call_button.native.click()
    ctrl.wait(300)
    print(f"lesion suite (3 random lesions) from the dock: {time.perf_counter() - t0:.1f} s")
    ctrl.book.fit()
    grab(viewer, "suites.png")
    suites_extras(viewer, ctrl)


def suites_extras(viewer, ctrl):
    """The invariance suite's per-sheet curves, a drawn region lesioned, synthetic neurons matched."""
    import tempfile

    from topoviewer.stimuli import load_folder, localizer

    dock, book, model = ctrl.docks["SuitesDock"], ctrl.book, ctrl.state.model
    dock.form.suite.value = "invariance"
    t0 = time.perf_counter()
    dock.form.call_button.native.click()
    ctrl.wait(300)
    print(f"invariance suite from the dock: {time.perf_counter() - t0:.1f} s")
    dock.outputs.setCurrentIndex(1)
    grab(viewer, "suites-curves.png")

    # a face through the network, a rectangle on the first sheet's activation map, lesioned
    tmp = Path(tempfile.mkdtemp(prefix="topoviewer-shots-"))
    loc = localizer(size=max(32, model.input_size), per_category=5, seed=7)
    ctrl.run_images(loc.images[loc.mask("faces")][0], "face")
    ctrl.wait(60)
    first = model.sheets[0]
    (x0, y0), (w, h) = first.origin_mm, first.extent_mm
    peak = np.asarray(ctrl.state.stimulator(first.name).site("inside"))  # the patch centre
    corners = peak + np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * 0.12 * np.array([w, h])
    dock.inputs.setCurrentIndex(1)
    dock.draw_button.click()
    book.get("lesion/regions").add_rectangles(book.layout.to_world(first.name, "activation", corners))
    book.get("lesion/regions").mode = "pan_zoom"
    dock.lesion_form.random_lesions.value = 3
    t0 = time.perf_counter()
    dock.lesion_form.call_button.native.click()
    ctrl.wait(300)
    print(f"lesion of a drawn region (3 random lesions) from the dock: {time.perf_counter() - t0:.1f} s")
    grab(viewer, "suites-region.png")
    dock.restore()
    ctrl.wait(60)

    # synthetic neurons: 12 units of the sheets plus noise, 3 repetitions, on 40 localizer images
    for c in loc.categories:
        (tmp / "stim" / c).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(loc.images[loc.mask(c)]):
            Image.fromarray((img * 255).astype(np.uint8)).save(tmp / "stim" / c / f"{i}.png")
    stimuli = load_folder(tmp / "stim", size=max(32, model.input_size))
    resp = model.responses(stimuli.images)
    rng = np.random.default_rng(0)
    units = [(name, int(u)) for name in resp for u in rng.choice(resp[name].shape[1], 6, replace=False)]
    signal = np.column_stack([resp[n][:, u] for n, u in units])
    signal = (signal - signal.mean(0)) / (signal.std(0) + 1e-9)
    neural = signal[:, :, None] + 0.8 * rng.normal(size=(*signal.shape, 3))
    np.savez(tmp / "neurons.npz", responses=neural)
    dock.inputs.setCurrentIndex(2)
    form = dock.match_form
    form.neural.value, form.stimuli.value, form.permutations.value = tmp / "neurons.npz", tmp / "stim", 200
    t0 = time.perf_counter()
    form.call_button.native.click()
    ctrl.wait(300)
    print(f"matching {len(units)} neurons on {len(stimuli)} images (200 permutations): "
          f"{time.perf_counter() - t0:.1f} s; recovered {sum(n['sheet'] == s and n['unit'] == u for n, (s, u) in zip(dock.matched[0]['neurons'], units))} of {len(units)}")
    grab(viewer, "suites-neurons.png")


def suites(model="sample"):
    from topoviewer_napari.launch import open_viewer

    viewer, ctrl = open_viewer(model)
    viewer.window._qt_window.resize(1600, 1000)
    ctrl.wait(180)
    lesion_suite(viewer, ctrl)
    viewer.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["early"]:
        early(sys.argv[2])
    elif sys.argv[1:2] == ["suites"]:
        suites(*sys.argv[2:3])
    elif sys.argv[1:2] == ["train"]:
        train(*sys.argv[2:3])
    else:
        args = [a for a in sys.argv[1:] if a != "--skip-train"]
        main(*(args[:1] or ["sample"]), skip_train="--skip-train" in sys.argv)
