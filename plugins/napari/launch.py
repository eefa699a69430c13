"""``topoviewer-napari``: napari with the plugin's docks and a model already loaded.

Without a display (no ``DISPLAY``/``WAYLAND_DISPLAY`` on Linux, and Qt not asked for
``offscreen``) it prints one line saying so and writes the default figure set with
:mod:`topoviewer.figures` instead of crashing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "has_display", "write_default_figures", "open_viewer", "add_docks"]

_T_IMPORT = time.time()


def _process_start() -> float:
    """Wall-clock time the process started (for "time to first picture"); import time as fallback."""
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # noqa: BLE001
        return _T_IMPORT


def has_display(env=None, platform=None) -> bool:
    """Whether Qt can open a window: always on macOS/Windows; on Linux a DISPLAY, a WAYLAND_DISPLAY or offscreen Qt."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform in ("darwin", "win32", "cygwin"):
        return True
    if env.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def write_default_figures(model_source="sample", out="topoviewer-figures", device="cpu", dpi=200) -> list:
    """The default figure set of a model: one map figure per localizer category and a purity figure."""
    from topoviewer.figures import map_figure, purity_figure
    from topoviewer.io import load
    from topoviewer.pipeline import analyze

    model = load(model_source, device=device)
    analysis = analyze(model)
    out = Path(out)
    written = []
    for category in analysis.categories:
        written.append(map_figure(analysis, model, out / f"maps-{category}.png", category=category, dpi=dpi))
    curves = {name: [m.summary["purity_curve"]] for name, m in analysis.sheets.items() if "purity_curve" in m.summary}
    if curves:
        unit = "mm" if model.sheets[0].unit == "mm" else "cell"
        written.append(purity_figure(curves, out / "purity-faces.png", dpi=dpi, unit=unit,
                                     title="Face purity around the patch centre", reference=unit == "mm"))
    return written


#: The stimulus set of the start's analysis (the file's hash in the cache key fixes the model, hence its input size).
START_STIMULI = "default_stimuli(model)"


class Preload:
    """Load and analyse a model in a plain thread while napari starts (time to first picture).

    Two steps. First, without torch: the file's sheets (:func:`topoviewer.io.read_sheets`) and,
    when this file was analysed before, its d′ maps from the user cache
    (:func:`topoviewer.cache.cached_preview`): ``preview`` becomes ``(sheets, categories, dprime)``. Then, once
    :meth:`hand_over` has drawn that preview (or found none), the model itself is loaded (torch's
    import would otherwise compete with napari's start for the interpreter) and analysed, from the
    cache again when it can: ``result`` becomes ``(model, stimuli, analysis, prepared)``
    (``prepared``: the patches and purity rings, :func:`~topoviewer_napari.state.prepare_maps`)
    or ``error`` a message; ``done`` is set last.
    """

    def __init__(self, source, device="cpu"):
        import threading

        self.source, self.device = source, device
        self.preview = None
        self.result = None
        self.error = None
        self.previewed = threading.Event()  # the preview step is over (with or without a preview)
        self.go = threading.Event()  # the model may be loaded now
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="topoviewer-preload", daemon=True)
        self.thread.start()

    def _path(self):
        from topoviewer.io import is_sample, sample_path

        return sample_path(self.source) if is_sample(self.source) else Path(self.source)

    def _preview(self):
        from topoviewer.cache import cached_preview
        from topoviewer.errors import TopoviewerError
        from topoviewer.io import read_sheets

        try:
            _, sheets = read_sheets(self._path())
        except (TopoviewerError, OSError):  # not an own-format file (a checkpoint…): no preview; the load says more
            return
        hit = cached_preview(self._path(), sheets, START_STIMULI)
        if hit is not None:
            self.preview = (sheets, *hit)

    def _run(self):
        from topoviewer.errors import TopoviewerError

        try:
            self._preview()
        except Exception:  # noqa: BLE001 - the preview only saves time; the model's load below reports errors
            self.preview = None
        finally:
            self.previewed.set()
        self.go.wait()
        try:
            from topoviewer.cache import cached_analysis
            from topoviewer.io import load
            from topoviewer.pipeline import default_stimuli

            from ._qt.controller import warm_rasters
            from .state import prepare_maps

            model = load(self.source, device=self.device)
            warm_rasters(model.sheets)
            analysis, stimuli = cached_analysis(model, self._path(), START_STIMULI, lambda: default_stimuli(model))
            # the maps' patches and rings only: the stimulation experiment is prepared after the first picture
            self.result = (model, stimuli, analysis, prepare_maps(model, analysis))
        except TopoviewerError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown in the viewer, not lost in a thread
            self.error = f"could not open {self.source}: {type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def hand_over(self, ctrl, *, then=None, on_picture=None):
        """Poll from the GUI thread: draw the preview when there is one, then give the model to the
        controller's state when it is loaded.

        ``then()`` runs once the first picture is on screen, or at once when there is no preview
        (the docks are added there, after the maps). ``on_picture()`` runs on the GUI thread when the
        first d′ maps have been handed to their layers (the preview's or the state's).
        """
        from qtpy.QtCore import QTimer

        from ._qt.controller import notify_error

        def picture():
            ctrl.first_picture_at = time.time()
            if on_picture is not None:
                on_picture()

        def after_picture():
            self.go.set()
            if then is not None:
                then()

        def on_analysis(state):
            state.events.analysis_changed.disconnect(on_analysis)
            picture()

        def poll_preview():
            if not self.previewed.is_set():
                QTimer.singleShot(20, poll_preview)
                return
            if self.preview is not None:
                ctrl.book.preview(*self.preview)
                picture()
                QTimer.singleShot(0, after_picture)  # the next event-loop turn: the maps are painted
            else:
                # before the layer book's slot, so that the picture is reported ahead of the secondary maps
                ctrl.state.events.analysis_changed.connect(on_analysis, priority=1)
                after_picture()
            QTimer.singleShot(20, poll_model)

        def poll_model():
            if not self.done.is_set():
                QTimer.singleShot(20, poll_model)
                return
            if self.error:
                notify_error(self.error)
            else:
                model, stimuli, analysis, prepared = self.result
                ctrl.state.set_model(model, str(self.source), stimuli=stimuli, analysis=analysis, prepared=prepared)
                QTimer.singleShot(0, ctrl.prepare_stimulation)

        QTimer.singleShot(0, poll_preview)


#: Tab titles that differ from the dock's name ("&" would be read as a keyboard mnemonic).
TAB_TITLES = {"Model & maps": "Model"}


def add_docks(viewer, names):
    """Open the plugin's docks (each once) as one tab stack on the right, "Model & maps" in front.

    One stack gives every dock the full height of the window (its content fits at 1280 × 800);
    the tabs sit on the stack's side (vertical), so all six names stay readable. Used by
    ``topoviewer-napari`` and by File ▸ Open Sample alike. Returns the dock widgets.
    """
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QTabWidget

    window = getattr(viewer, "window", None)
    if window is None or not hasattr(window, "add_plugin_dock_widget"):
        return []
    qt_window = getattr(window, "_qt_window", None)
    if qt_window is not None:
        qt_window.setTabPosition(Qt.DockWidgetArea.RightDockWidgetArea, QTabWidget.TabPosition.East)
    docks = []
    for name in names:  # napari hands back a dock that is already open
        dock, _ = window.add_plugin_dock_widget("topoviewer", name, tabify=bool(docks))
        dock.setWindowTitle(TAB_TITLES.get(name, name))  # the tab's text: "Train", not "Train (topoviewer)"
        docks.append(dock)
    if docks:
        from qtpy.QtCore import QTimer

        docks[0].raise_()
        QTimer.singleShot(0, docks[0].raise_)  # napari raises the dock added last once the loop runs
    return docks


def open_viewer(model="sample", device="cpu", docks=None, show=True, viewer=None, preload=None, on_picture=None):
    """A napari viewer with the plugin's docks and ``model`` loading. Returns (viewer, controller).

    With a :class:`Preload` the maps come first and the docks after them (``on_picture``: see
    :meth:`Preload.hand_over`).
    """
    import napari

    from . import DOCKS
    from ._qt.controller import controller_for

    if viewer is None:
        viewer = napari.Viewer(title="topoviewer", show=show)
    ctrl = controller_for(viewer)
    ctrl.device = device
    names = list(DOCKS) if docks is None else docks
    if preload is not None:
        def docks_after_picture():
            add_docks(viewer, names)
            ctrl.book.fit()  # the docks took part of the canvas
        preload.hand_over(ctrl, then=docks_after_picture, on_picture=on_picture)
    else:
        add_docks(viewer, names)
        if model:
            ctrl.open_model(model)
    return viewer, ctrl


def build_parser():
    p = argparse.ArgumentParser(
        prog="topoviewer-napari",
        description="Open napari with topoviewer's docks and a topographic model.",
    )
    p.add_argument("model", nargs="?", default="sample",
                   help="'sample' (the embedded default model, the default), 'sample-v1' (the embedded model "
                   "with a V1-like sheet) or a model file")
    p.add_argument("--device", default="cpu", help="auto, cpu or cuda (default: cpu)")
    p.add_argument("--figures", default="topoviewer-figures",
                   help="where the figures go when there is no display (default: %(default)s)")
    p.add_argument("--report-startup", action="store_true",
                   help="print the seconds from process start to the first sheet maps on screen, and until "
                        "the model is loaded and every map drawn")
    p.add_argument("--quit-when-ready", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from topoviewer.errors import TopoviewerError

    if not has_display():
        try:
            written = write_default_figures(args.model, args.figures, device=args.device)
        except TopoviewerError as exc:
            print(f"topoviewer-napari: no display, and no figures either: {exc}", file=sys.stderr)
            return 2
        print(f"topoviewer-napari: no display (DISPLAY/WAYLAND_DISPLAY unset), so no window: wrote "
              f"{len(written)} figures to {Path(args.figures).resolve()}")
        return 0

    t0 = _process_start()
    preload = Preload(args.model, args.device)  # model + analysis in parallel with napari's start
    import napari
    from qtpy.QtCore import QTimer

    report = args.report_startup or args.quit_when_ready

    def on_picture():
        def painted():
            if report:
                print(f"topoviewer-napari: first picture after {time.time() - t0:.2f} s", flush=True)
        QTimer.singleShot(0, painted)

    viewer, ctrl = open_viewer(args.model, args.device, preload=preload, on_picture=on_picture)
    if report:
        def ready(state):  # the model is in and every map is drawn
            if ctrl.book.pending:
                QTimer.singleShot(20, lambda: ready(state))
                return
            print(f"topoviewer-napari: ready after {time.time() - t0:.2f} s (model loaded, every map drawn)",
                  flush=True)
            if args.quit_when_ready:
                ctrl.close()  # nothing queued (e.g. the stimulation's preparation) runs on a closed viewer
                viewer.close()

        def on_model(state):
            state.events.analysis_changed.disconnect(on_model)
            QTimer.singleShot(0, lambda: ready(state))

        ctrl.state.events.analysis_changed.connect(on_model)
    napari.run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
