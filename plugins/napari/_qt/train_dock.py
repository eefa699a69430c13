"""Train dock: train a small topographic model live, watching losses and maps evolve."""

from __future__ import annotations

import time
import typing
from pathlib import Path

import numpy as np
from magicgui.widgets import Container, FileEdit, FloatSpinBox, create_widget
from qtpy.QtCore import QElapsedTimer, QTimer
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy

from topoviewer.errors import TopoviewerError
from topoviewer.families import TRAINABLE
from topoviewer.io import is_sample
from topoviewer.training import DEFAULT_WEIGHT, TrainConfig
from topoviewer.validate import DEVICES

from .base import Dock, group

MODEL_FILTER = "Models (*.safetensors *.pt *.pth *.ckpt *.torch)"

#: The TrainConfig fields the form shows, in order, with the widget options their type and default do not give
#: (labels, ranges, tips; the choices are the core's own lists).
FORM_FIELDS = {
    "arch": dict(label="Architecture", choices=TRAINABLE, tooltip=(
        "tdann_small: CPU-sized AlexNet-style TDANN; toponet_small: channel-grid TopoNet; "
        "lee2020: the paper's AlexNet (slow on CPU)")),
    "loss": dict(label="Spatial loss", choices=tuple(DEFAULT_WEIGHT)),
    "weight": dict(min=0.0, max=1000.0, step=0.05, tooltip="α per sheet for absolute/relative, τ for TopoLoss"),
    "steps": dict(min=1, max=1_000_000),
    "batch_size": dict(label="Batch", min=1, max=4096),
    "per_category": dict(label="Images / category", min=1, max=100_000,
                         tooltip="Training images per category of the procedural diet"),
    "data": dict(label="Images", widget_type="FileEdit", mode="d", nullable=True, tooltip=(
        "An image folder with one sub-folder per class (or a text file list); empty: the procedural diet")),
    "init": dict(label="Start from", widget_type="FileEdit", mode="r", filter=MODEL_FILTER, nullable=True,
                 tooltip="A model whose weights and sheets the run starts from (any model topoviewer opens); "
                         "its head is rebuilt for the images' classes"),
    "device": dict(choices=DEVICES),
    "seed": dict(min=0, max=2**31 - 1),  # a Qt spin box holds a signed 32-bit int
}
#: What an empty path field means.
PLACEHOLDERS = {"data": "procedural diet", "init": "fresh weights"}


def form_values(cfg: TrainConfig) -> dict:
    """The form's values for ``cfg``: its fields, the weight resolved (None → the loss's default)."""
    return {name: cfg.resolved_weight() if name == "weight" else getattr(cfg, name) for name in FORM_FIELDS}


def config_form() -> Container:
    """The form of the TrainConfig fields in FORM_FIELDS: widgets from each field's type and default."""
    hints = typing.get_type_hints(TrainConfig)
    widgets = []
    for name, value in form_values(TrainConfig()).items():
        options = dict(FORM_FIELDS[name])
        label = options.pop("label", name.replace("_", " ").capitalize())
        widgets.append(create_widget(value=value, annotation=hints[name], name=name, label=label, options=options))
    for w in widgets:
        if isinstance(w, FileEdit):
            w.choose_btn.text = "…"
            w.line_edit.native.setPlaceholderText(PLACEHOLDERS[w.name])
    return Container(widgets=widgets)


def _path_setting(path) -> str | None:
    """A path field as a TrainConfig path: None when empty, an embedded model's name (``"sample"``) kept, else
    absolute."""
    text = "" if path is None else str(path).strip()
    return str(Path(text).expanduser().resolve()) if text and not is_sample(text) else (text or None)


def default_out(arch: str, loss: str) -> Path:
    return Path.home() / "topoviewer-runs" / f"{arch}-{loss}-{time.strftime('%Y%m%d-%H%M%S')}.safetensors"


class TickMonitor:
    """Measures the GUI event loop: a 10 ms timer records how late each tick comes."""

    def __init__(self, parent, interval_ms: int = 10):
        self.interval = interval_ms
        self.timer = QTimer(parent)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.gaps: list = []

    def start(self):
        self.gaps = []
        self.clock.start()
        self.timer.start()

    def stop(self):
        self.timer.stop()

    def _tick(self):
        self.gaps.append(self.clock.restart())

    def stats(self) -> dict:
        g = np.asarray(self.gaps[1:], dtype=float)
        if g.size == 0:
            return {}
        return {"ticks": int(g.size), "median_ms": float(np.median(g)), "p95_ms": float(np.percentile(g, 95)),
                "max_ms": float(g.max())}


class TrainDock(Dock):
    """Configure, start, pause and stop a training run; loss curves and maps refresh while it runs."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        lay = self.content
        box, blay = group("Run")
        # the run's settings: a magicgui form derived from TrainConfig, and two of the dock's own
        self.form = config_form()
        self.form.extend([
            FloatSpinBox(name="refresh", label="Refresh maps (s)", value=3.0, min=0.5, max=600.0, tooltip=(
                "How often the sheet maps are recomputed from the model in training "
                "(an in-memory snapshot, whatever the checkpoint interval)")),
            FileEdit(name="out", label="Save to", mode="w", filter="topoviewer model (*.safetensors)",
                     tooltip="The trained model (and its checkpoints) is written here"),
        ])
        self.form.out.choose_btn.text = "…"
        blay.addWidget(self.form.native)
        recipe_button = QPushButton("Default model's recipe")
        recipe_button.setToolTip(
            "Fill in the settings that trained the embedded default model (sample_data/recipe.json)")
        recipe_button.clicked.connect(lambda: self.guarded(self.load_recipe))
        blay.addWidget(recipe_button)
        lay.addWidget(box)
        # the output name follows the settings until the user types or picks another one
        self._auto_out, self._auto_name = True, None
        self.form.out.changed.connect(self._out_changed)
        self.form.arch.changed.connect(self._rename_out)
        self.form.loss.changed.connect(self._loss_changed)
        self._rename_out()
        self._recipe = TrainConfig()  # the settings without a widget (lr, λ, category frequency, arch config…)
        try:
            self.load_recipe()
        except TopoviewerError:  # no readable recipe shipped: keep TrainConfig's defaults
            pass

        row = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setEnabled(False)
        self.pause_button.toggled.connect(self.pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("Stop after the current step: it is saved (resumable) and opened")
        self.stop_button.clicked.connect(self.stop)
        for b in (self.start_button, self.pause_button, self.stop_button):
            row.addWidget(b)
        lay.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)

        import pyqtgraph as pg

        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(140)
        # the plot takes the height left over: its own preferred size (a 640 × 480 view) must not
        # make the dock taller than a 1280 × 800 window
        self.plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.plot.addLegend(offset=(-10, 10))
        self.task_curve = self.plot.plot([], [], pen=pg.mkPen("#ff6e4a", width=2), name="task (cross-entropy)")
        self.spatial_curve = self.plot.plot([], [], pen=pg.mkPen("#4ac6ff", width=2), name="spatial × weight")
        # accuracy on its own axis (right, 0–1): on the loss axis it hugged the floor
        item = self.plot.getPlotItem()
        self.acc_view = pg.ViewBox()
        item.showAxis("right")
        item.scene().addItem(self.acc_view)
        item.getAxis("right").linkToView(self.acc_view)
        item.getAxis("right").setLabel("batch accuracy")
        self.acc_view.setXLink(item)
        self.acc_view.setYRange(0.0, 1.0, padding=0.0)
        self.acc_view.setMouseEnabled(x=False, y=False)
        self.acc_curve = pg.PlotDataItem([], [], pen=pg.mkPen("#b6ff4a", width=1.5), name="batch accuracy (right)")
        self.acc_view.addItem(self.acc_curve)
        item.legend.addItem(self.acc_curve, "batch accuracy (right axis)")
        item.vb.sigResized.connect(lambda *_: self.acc_view.setGeometry(item.vb.sceneBoundingRect()))
        lay.addWidget(self.plot, 1)
        self.ticks_label = QLabel("")
        self.ticks_label.setWordWrap(True)
        lay.addWidget(self.ticks_label)

        self.history = {"step": [], "task": [], "spatial": [], "acc": []}
        self.worker = None
        self._weight = 0.0  # the running config's spatial-loss weight (the curve is spatial × weight)
        self.result = None
        self.finish_reason = None
        self.ticks = TickMonitor(self)
        self._plot_timer = QTimer(self)
        self._plot_timer.setInterval(250)
        self._plot_timer.timeout.connect(self._redraw)
        self._last = None
        self._paused = False
        ctrl = self.ctrl
        self.destroyed.connect(lambda *_: ctrl.stop("training"))  # closing the viewer stops the run

    # ------------------------------------------------------------------ config
    def _loss_changed(self, loss):
        self.form.weight.value = DEFAULT_WEIGHT[loss]
        self.form.weight.enabled = loss != "none"
        self._rename_out()

    def load_recipe(self, path=None):
        """Fill the form from a training recipe (``TrainConfig.from_json``: a JSON file or a dict of TrainConfig
        fields); default: the embedded model's. Its settings without a widget go into every run's config."""
        cfg = TrainConfig.from_json("sample" if path is None else path)
        before = {name: self.form[name].line_edit.value if name in PLACEHOLDERS else self.form[name].value
                  for name in FORM_FIELDS}
        try:
            self._fill(form_values(cfg))
        except TopoviewerError:
            self._fill(before)
            raise
        self._recipe = cfg
        return cfg

    def _fill(self, values):
        for name, value in values.items():
            w = self.form[name]
            if isinstance(w, FileEdit):  # the path as written ("sample" is not a file here)
                w.line_edit.value = "" if value is None else str(value)
                continue
            try:
                w.value = value
            except (ValueError, TypeError):  # e.g. an architecture or device the form does not offer
                takes = ", ".join(map(str, w.choices)) if hasattr(w, "choices") else f"{w.min:g} to {w.max:g}"
                raise TopoviewerError(f"recipe setting {name} = {value!r}: the Train dock takes {takes}") from None

    def _rename_out(self, *_):
        if self._auto_out:
            self._auto_name = default_out(self.form.arch.value, self.form.loss.value)
            self.form.out.value = self._auto_name

    def _out_changed(self, value):
        self._auto_out = value == self._auto_name

    def config(self, **overrides):
        """The TrainConfig of a run: the recipe's settings, the form's values, then ``overrides``."""
        values = {name: self.form[name].value for name in FORM_FIELDS}
        values["data"], values["init"] = _path_setting(values["data"]), _path_setting(values["init"])
        kw = {**self._recipe.to_json(), **values,
              "val_per_category": max(2, min(20, values["per_category"] // 5)),
              # checkpoints make the run resumable (the live maps come from in-memory snapshots)
              "checkpoint_every": max(1, min(250, values["steps"] // 10))}
        if kw["data"]:
            kw["category_frequency"], kw["diet"] = {}, {}  # the recipe's diet settings do not apply to image folders
        return TrainConfig(**{**kw, **overrides})

    def _out_path(self) -> Path:
        """*Save to* as a .safetensors path (the suffix added to the field when missing)."""
        text = self.form.out.line_edit.value.strip()
        if not text:
            raise TopoviewerError("Save to: expected the model file to write (.safetensors)")
        out = Path(text).expanduser()
        if out.suffix != ".safetensors":
            out = out.with_suffix(".safetensors")
            self.form.out.value = out  # what the status names when the run ends
        return out

    # ------------------------------------------------------------------ run
    def start(self, **overrides):
        if self.worker is not None:
            return None
        cfg = self.guarded(lambda: self.config(**overrides).validate())
        out = None if cfg is None else self.guarded(self._out_path)
        if out is None:
            return None
        for k in self.history:
            self.history[k] = []
        self.result, self.finish_reason = None, None
        worker = self.guarded(
            self.ctrl.start_training, cfg, out, refresh_s=float(self.form.refresh.value),
            on_progress=self._on_progress, on_finished=self._on_finished,
        )
        if worker is None:
            return None
        self.worker = worker
        self._weight = cfg.resolved_weight()
        self.start_button.setEnabled(False)
        self.pause_button.setEnabled(True)
        self.stop_button.setEnabled(True)
        self._paused = False
        self.status.setText(f"preparing the training diet ({cfg.per_category} images per category)…")
        self.ticks.start()
        self._plot_timer.start()
        return worker

    def pause(self, on):
        if self.worker is None:
            return
        self._paused = bool(on)
        if on:
            self.worker.pause()
            self.status.setText("paused")
        else:
            self.worker.resume()

    def stop(self):
        if self.worker is not None:
            self.status.setText("stopping: saving the current step…")
            self._paused = False
            self.ctrl.stop_training()

    def _on_progress(self, p):
        h = self.history
        h["step"].append(p.step)
        h["task"].append(p.task_loss)
        h["spatial"].append(p.spatial_loss * self._weight)
        h["acc"].append(p.accuracy)
        self._last = p

    def _redraw(self):
        h = self.history
        if h["step"]:
            self.task_curve.setData(h["step"], h["task"])
            self.spatial_curve.setData(h["step"], h["spatial"])
            self.acc_curve.setData(h["step"], h["acc"])
        p = self._last
        if p is not None and self._paused:
            self.status.setText(f"paused at step {p.step}/{p.steps} (Pause again to continue)")
        elif p is not None:
            val = f", validation accuracy {p.val_accuracy:.2f}" if p.val_accuracy is not None else ""
            self.status.setText(f"step {p.step}/{p.steps} · task {p.task_loss:.3f} · spatial {p.spatial_loss:.4f} · "
                                f"{p.images_per_s:.0f} img/s{val}")
        s = self.ticks.stats()
        if s:
            self.ticks_label.setText(f"GUI ticks while training: median {s['median_ms']:.0f} ms, "
                                     f"p95 {s['p95_ms']:.0f} ms, max {s['max_ms']:.0f} ms (timer 10 ms)")

    def _on_finished(self, model, reason):
        self._redraw()
        self.ticks.stop()
        self._plot_timer.stop()
        self.worker = None
        self.result, self.finish_reason = model, reason
        self.start_button.setEnabled(True)
        self.pause_button.setChecked(False)
        self.pause_button.setEnabled(False)
        self.stop_button.setEnabled(False)
        text = {"done": f"finished: saved {self.form.out.value} and opened it as the current model",
                "stopped": f"stopped at step {self.history['step'][-1] if self.history['step'] else 0}: "
                           f"saved {self.form.out.value} (resumable with --resume) and opened it",
                "error": "training failed (see the notification)"}[reason]
        self.status.setText(text)
        self._auto_out = True
        self._rename_out()
