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


class Preload:
    """Load and analyse a model in a plain thread while napari starts (time to first picture).

    The analysis comes from the user cache (:mod:`topoviewer.cache`) when this model file was
    analysed before: the second start shows the maps as soon as the window is up.

    ``result`` becomes ``(model, stimuli, analysis, prepared)`` (``prepared``: the patches and purity
    rings, :func:`~topoviewer_napari.state.prepare_maps`) or ``error`` a message; ``done`` is set last.
    """

    def __init__(self, source, device="cpu"):
        import threading

        self.source, self.device = source, device
        self.result = None
        self.error = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="topoviewer-preload", daemon=True)
        self.thread.start()

    def _run(self):
        from topoviewer.errors import TopoviewerError

        try:
            from topoviewer.cache import cached_analysis
            from topoviewer.io import is_sample, load, sample_path
            from topoviewer.pipeline import default_stimuli

            from ._qt.controller import warm_rasters
            from .state import prepare_maps

            model = load(self.source, device=self.device)
            warm_rasters(model)
            path = sample_path(self.source) if is_sample(self.source) else self.source
            analysis, stimuli = cached_analysis(model, path, f"default_stimuli(input_size={model.input_size})",
                                                lambda: default_stimuli(model))
            # the maps' patches and rings only: the stimulation experiment is prepared after the first picture
            self.result = (model, stimuli, analysis, prepare_maps(model, analysis))
        except TopoviewerError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown in the viewer, not lost in a thread
            self.error = f"could not open {self.source}: {type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def hand_over(self, ctrl, then=None):
        """Poll from the GUI thread; when done, give the result to the controller's state."""
        from qtpy.QtCore import QTimer

        from ._qt.controller import notify_error

        def poll():
            if not self.done.is_set():
                QTimer.singleShot(20, poll)
                return
            if self.error:
                notify_error(self.error)
            else:
                model, stimuli, analysis, prepared = self.result
                ctrl.state.set_model(model, str(self.source), stimuli=stimuli, analysis=analysis, prepared=prepared)
                ctrl.first_picture_at = time.time()
                QTimer.singleShot(0, ctrl.prepare_stimulation)
            if then is not None:
                then()

        QTimer.singleShot(0, poll)


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


def open_viewer(model="sample", device="cpu", docks=None, show=True, viewer=None, preload=None):
    """A napari viewer with the plugin's docks and ``model`` loading. Returns (viewer, controller)."""
    import napari

    from . import DOCKS
    from ._qt.controller import controller_for

    if viewer is None:
        viewer = napari.Viewer(title="topoviewer", show=show)
    ctrl = controller_for(viewer)
    ctrl.device = device
    add_docks(viewer, list(DOCKS) if docks is None else docks)
    if preload is not None:
        preload.hand_over(ctrl)
    elif model:
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
                   help="print the seconds from process start to the first sheet maps on screen")
    p.add_argument("--quit-after-first-picture", action="store_true", help=argparse.SUPPRESS)
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

    viewer, ctrl = open_viewer(args.model, args.device, preload=preload)
    if args.report_startup or args.quit_after_first_picture:
        from qtpy.QtCore import QTimer

        def first_picture(state):
            def painted():
                print(f"topoviewer-napari: first picture after {time.time() - t0:.2f} s", flush=True)
                if args.quit_after_first_picture:
                    ctrl.close()  # nothing queued (e.g. the stimulation's preparation) runs on a closed viewer
                    viewer.close()
            QTimer.singleShot(0, painted)
            state.events.analysis_changed.disconnect(first_picture)

        # before the layer book's slot: "painted" is then queued ahead of the secondary maps, which
        # follow one kind per event-loop turn; the first picture is the d′ maps of every sheet
        ctrl.state.events.analysis_changed.connect(first_picture, priority=1)
    napari.run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
