"""Export dock: publication figure (PNG/SVG/PDF) or interactive HTML page, screenshot, maps as data
(NPZ/CSV), stimulation log, and the workspace (save / restore a session; also in napari's File menu)."""

from __future__ import annotations

from pathlib import Path

import napari.viewer
from magicgui import magicgui
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton

from topoviewer.errors import TopoviewerError

from .base import Dock, ask_open_path, ask_save_path, breakable, group
from .controller import controller_for, notify_error

WORKSPACE_FILTER = "topoviewer workspace (*.json)"

#: Figure formats of the form: the matplotlib figure, or the self-contained interactive page (``topoviewer share``).
FIGURE_FORMATS = {"PNG": ".png", "SVG": ".svg", "PDF": ".pdf", "HTML (interactive)": ".html"}
#: The figures: category maps (map_figure) or early visual maps (early_figure).
FIGURE_MAPS = {"category": "category", "early visual": "early"}


class ExportDock(Dock):
    """Everything leaves the viewer from here."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        lay = self.content

        # the two parameter forms are magicgui forms built from the signatures of the dialogs' actions
        box, blay = group("Publication figure")
        self.figure_form = magicgui(
            self._ask_figure, call_button="Save figure…",
            format={"label": "Format", "choices": list(FIGURE_FORMATS)},
            maps={"label": "Maps", "choices": list(FIGURE_MAPS),
                  "tooltip": "Category maps (d′, voxel t, purity) or early visual maps (run “Gratings” first)"},
            dpi={"label": "Resolution (dpi)", "min": 50, "max": 1200,
                 "tooltip": "Resolution of PNGs (and of the rasters inside SVG/PDF)"})
        self.figure_form.call_button.tooltip = (
            "Every sheet: d′ map, voxel t-map with patch outline, purity rings, purity curve "
            "(topoviewer.figures.map_figure, current category and FWHM); or, with Maps = early visual, the "
            "orientation map with pinwheels, OSI, SF and colour maps (topoviewer.figures.early_figure). HTML: one "
            "self-contained page to open in any browser, with a category selector, hover read-out and precomputed "
            "click-to-stimulate")
        blay.addWidget(self.figure_form.native)
        lay.addWidget(box)

        box, blay = group("Screenshot")
        self.screenshot_form = magicgui(
            self._ask_screenshot, call_button="Save screenshot…",
            scale={"label": "Scale (×)", "min": 0.25, "max": 8.0, "step": 0.5})
        self.screenshot_form.call_button.tooltip = "The canvas as shown (PNG)"
        blay.addWidget(self.screenshot_form.native)
        lay.addWidget(box)

        box, blay = group("Data")
        row = QHBoxLayout()
        b1 = QPushButton("Maps (NPZ)…")
        b1.setToolTip("Per unit: positions, d′ per category, activations, stimulation; voxel t maps; purity curves")
        b1.clicked.connect(lambda: self._ask_maps(".npz"))
        b2 = QPushButton("Maps (CSV)…")
        b2.setToolTip("One row per unit: sheet, unit, x, y, d′ per category, activations, stimulation")
        b2.clicked.connect(lambda: self._ask_maps(".csv"))
        row.addWidget(b1)
        row.addWidget(b2)
        blay.addLayout(row)
        b3 = QPushButton("Stimulation log (CSV)…")
        b3.clicked.connect(self._ask_log)
        blay.addWidget(b3)
        lay.addWidget(box)
        box, blay = group("Workspace")
        row = QHBoxLayout()
        b4 = QPushButton("Save workspace…")
        b4.setToolTip("Model path and hash, category, FWHM, thresholds, pictures and stimulation log: "
                      "a .json with a .npz beside it")
        b4.clicked.connect(lambda: ask_save_workspace(self.viewer, self))
        b5 = QPushButton("Open workspace…")
        b5.setToolTip("Reopen a saved session: its model (if unchanged), settings, pictures and log")
        b5.clicked.connect(lambda: ask_open_workspace(self.viewer, self))
        row.addWidget(b4)
        row.addWidget(b5)
        blay.addLayout(row)
        lay.addWidget(box)
        self.last = QLabel("")
        self.last.setWordWrap(True)
        lay.addWidget(self.last)
        lay.addStretch(1)

    # ------------------------------------------------------------------ actions (paths given: scripts and tests)
    def save_figure(self, path, dpi: int | None = None, maps: str | None = None):
        """Start writing the figure in a worker (the GUI stays live); returns the worker, None for a bad request."""
        maps = FIGURE_MAPS[maps or self.figure_form.maps.value]
        return self.guarded(self.ctrl.save_figure, path, dpi or self.figure_form.dpi.value, maps,
                            on_done=self._done)

    def save_screenshot(self, path, scale: float | None = None):
        out = self.guarded(self.ctrl.save_screenshot, path, scale or self.screenshot_form.scale.value)
        return self._done(out)

    def save_maps(self, path):
        return self._done(self.guarded(self.state.save_maps, path))

    def save_log(self, path):
        return self._done(self.guarded(self.state.save_log, path))

    def _done(self, out):
        if out is not None:
            self.last.setText(breakable(f"wrote {out}"))
        return out

    # ------------------------------------------------------------------ dialogs
    def _stem(self):
        m = self.state.model
        return f"{m.name if m is not None else 'topoviewer'}-{self.state.category}"

    def _ask_figure(self, format: str = "PNG", dpi: int = 300, maps: str = "category"):
        suffix = FIGURE_FORMATS[format]
        stem = self._stem() + ("" if maps == "category" else "-early")
        path = ask_save_path(self, "Save the figure", Path.cwd() / f"{stem}{suffix}",
                             f"{format.split()[0]} (*{suffix})")
        if path:
            return self.save_figure(path if Path(path).suffix else path + suffix, dpi, maps)

    def _ask_screenshot(self, scale: float = 2.0):
        path = ask_save_path(self, "Save a screenshot", Path.cwd() / f"{self._stem()}-view.png", "PNG (*.png)")
        if path:
            self.save_screenshot(path, scale)

    def _ask_maps(self, suffix):
        path = ask_save_path(self, "Save the maps", Path.cwd() / f"{self._stem()}-maps{suffix}", f"(*{suffix})")
        if path:
            self.save_maps(path if Path(path).suffix else path + suffix)

    def _ask_log(self):
        path = ask_save_path(self, "Save the stimulation log", Path.cwd() / "stimulation-log.csv", "CSV (*.csv)")
        if path:
            self.save_log(path)


# ---------------------------------------------------------------------- workspace (dock buttons and File menu)
def _workspace_call(fn, path):
    try:
        return fn(path)
    except TopoviewerError as exc:
        notify_error(str(exc))
        return None


def ask_save_workspace(viewer: napari.viewer.Viewer, parent=None):
    """File ▸ Save topoviewer workspace…: a save dialog, then the session as JSON + NPZ."""
    ctrl = controller_for(viewer)
    stem = Path(ctrl.state.source).stem if ctrl.state.source else "topoviewer"
    path = ask_save_path(parent, "Save the workspace", Path.cwd() / f"{stem}-workspace.json", WORKSPACE_FILTER)
    if not path:
        return None
    out = _workspace_call(ctrl.save_workspace, path if Path(path).suffix else path + ".json")
    dock = ctrl.docks.get("ExportDock")
    if out is not None and dock is not None:
        dock._done(out)
    return out


def ask_open_workspace(viewer: napari.viewer.Viewer, parent=None):
    """File ▸ Open topoviewer workspace…: an open dialog, then the session restored."""
    path = ask_open_path(parent, "Open a workspace", WORKSPACE_FILTER)
    return _workspace_call(controller_for(viewer).restore_workspace, path) if path else None
