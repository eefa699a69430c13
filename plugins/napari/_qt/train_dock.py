"""Train dock: train a small topographic model live, watching losses and maps evolve."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from qtpy.QtCore import QElapsedTimer, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
)

from topoviewer.errors import TopoviewerError

from .base import Dock, ask_open_path, ask_save_path, group

ARCHS = ("tdann_small", "toponet_small", "lee2020")
LOSSES = ("absolute", "relative", "topoloss", "none")


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
        from topoviewer.training import DEFAULT_WEIGHT

        self._default_weight = DEFAULT_WEIGHT
        lay = self.content
        box, form = group("Run", form=True)
        self.arch = QComboBox()
        self.arch.addItems(ARCHS)
        self.arch.setToolTip("tdann_small: CPU-sized AlexNet-style TDANN; toponet_small: channel-grid TopoNet; "
                             "lee2020: the paper's AlexNet (slow on CPU)")
        form.addRow("Architecture", self.arch)
        self.loss = QComboBox()
        self.loss.addItems(LOSSES)
        self.loss.currentTextChanged.connect(self._loss_changed)
        form.addRow("Spatial loss", self.loss)
        self.weight = QDoubleSpinBox()
        self.weight.setRange(0.0, 1000.0)
        self.weight.setDecimals(3)
        self.weight.setSingleStep(0.05)
        self.weight.setToolTip("α per sheet for absolute/relative, τ for TopoLoss")
        form.addRow("Weight", self.weight)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1_000_000)
        self.steps.setValue(500)
        form.addRow("Steps", self.steps)
        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.batch.setValue(64)
        form.addRow("Batch", self.batch)
        self.per_category = QSpinBox()
        self.per_category.setRange(1, 100_000)
        self.per_category.setValue(100)
        self.per_category.setToolTip("Training images per category of the procedural diet")
        form.addRow("Images / category", self.per_category)
        self.data, self.data_pick = self._path_row(
            form, "Images", "procedural diet", "An image folder with one sub-folder per class (or a text file "
            "list); empty: the procedural diet", lambda: ask_open_path(self, "Training images", "", directory=True))
        self.init, self.init_pick = self._path_row(
            form, "Start from", "fresh weights", "A model whose weights and sheets the run starts from (any model "
            "topoviewer opens); its head is rebuilt for the images' classes",
            lambda: ask_open_path(self, "Start from a model", "Models (*.safetensors *.pt *.pth *.ckpt *.torch)"))
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        form.addRow("Device", self.device)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("Seed", self.seed)
        self.refresh = QDoubleSpinBox()
        self.refresh.setRange(0.5, 600.0)
        self.refresh.setValue(3.0)
        self.refresh.setSuffix(" s")
        self.refresh.setToolTip("How often the sheet maps are recomputed from the model in training "
                                "(an in-memory snapshot, whatever the checkpoint interval)")
        form.addRow("Refresh maps", self.refresh)
        row = QHBoxLayout()
        self.out = QLineEdit(str(default_out(self.arch.currentText(), self.loss.currentText())))
        self.out.setToolTip("The trained model (and its checkpoints) is written here")
        self._auto_out = True  # the name follows the settings until the user types or picks one
        self.out.textEdited.connect(lambda _: setattr(self, "_auto_out", False))
        self.arch.currentTextChanged.connect(self._rename_out)
        self.loss.currentTextChanged.connect(self._rename_out)
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._ask_out)
        row.addWidget(self.out, 1)
        row.addWidget(browse)
        form.addRow("Save to", row)
        recipe_button = QPushButton("Default model's recipe")
        recipe_button.setToolTip(
            "Fill in the settings that trained the embedded default model (sample_data/recipe.json)")
        recipe_button.clicked.connect(lambda: self.guarded(self.load_recipe))
        form.addRow("", recipe_button)
        lay.addWidget(box)
        self._loss_changed(self.loss.currentText())
        self._extra = {}  # recipe settings without a widget (lr, λ, category frequency, arch config)
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
    @staticmethod
    def _path_row(form, label, placeholder, tip, ask):
        """A path field and its "…" picker button; an empty field means ``placeholder``."""
        row = QHBoxLayout()
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        edit.setToolTip(tip)
        browse = QToolButton()
        browse.setText("…")

        def pick():
            path = ask()
            if path:
                edit.setText(path)

        browse.clicked.connect(pick)
        row.addWidget(edit, 1)
        row.addWidget(browse)
        form.addRow(label, row)
        return edit, browse

    def _loss_changed(self, loss):
        self.weight.setValue(float(self._default_weight.get(loss, 0.0)))
        self.weight.setEnabled(loss != "none")

    def load_recipe(self, path=None):
        """Set the fields from a training recipe (JSON of TrainConfig fields); default: the sample's."""
        from topoviewer.training import TrainConfig

        cfg = TrainConfig.from_json("sample" if path is None else path)
        self.arch.setCurrentText(cfg.arch)
        self.loss.setCurrentText(cfg.loss)
        spins = {"weight": self.weight, "steps": self.steps, "batch_size": self.batch,
                 "per_category": self.per_category, "seed": self.seed}
        for key, w in spins.items():
            if getattr(cfg, key) is not None:
                w.setValue(getattr(cfg, key))
        self._extra = {k: getattr(cfg, k) for k in ("lr", "correlation_length_mm", "category_frequency",
                                                     "arch_config", "optimizer", "weight_decay", "warmup")}
        return cfg

    def _rename_out(self, _=None):
        if self._auto_out:
            self.out.setText(str(default_out(self.arch.currentText(), self.loss.currentText())))

    def _ask_out(self):
        path = ask_save_path(self, "Save the trained model", self.out.text(), "topoviewer model (*.safetensors)")
        if path:
            self._auto_out = False
            self.out.setText(path if path.endswith(".safetensors") else path + ".safetensors")

    def config(self, **overrides):
        from topoviewer.training import TrainConfig

        kw = dict(
            arch=self.arch.currentText(), loss=self.loss.currentText(), weight=float(self.weight.value()),
            steps=int(self.steps.value()), batch_size=int(self.batch.value()), device=self.device.currentText(),
            seed=int(self.seed.value()), per_category=int(self.per_category.value()),
            val_per_category=max(2, min(20, int(self.per_category.value()) // 5)),
        )
        for key, edit in (("data", self.data), ("init", self.init)):
            text = edit.text().strip()
            kw[key] = str(Path(text).expanduser().resolve()) if text and text != "sample" else (text or None)
        kw.update(getattr(self, "_extra", {}))
        if kw["data"]:
            kw["category_frequency"] = {}  # the recipe's diet frequencies do not apply to image folders
        kw.update(overrides)
        # checkpoints make the run resumable (the live maps come from in-memory snapshots)
        kw.setdefault("checkpoint_every", max(1, min(250, kw["steps"] // 10)))
        return TrainConfig(**kw)

    # ------------------------------------------------------------------ run
    def start(self, **overrides):
        if self.worker is not None:
            return None
        cfg = self.guarded(lambda: self.config(**overrides).validate())
        if cfg is None:
            return None
        out = Path(self.out.text()).expanduser()
        if out.suffix != ".safetensors":
            out = out.with_suffix(".safetensors")
        for k in self.history:
            self.history[k] = []
        self.result, self.finish_reason = None, None
        worker = self.guarded(
            self.ctrl.start_training, cfg, out, refresh_s=float(self.refresh.value()),
            on_progress=self._on_progress, on_finished=self._on_finished,
        )
        if worker is None:
            return None
        self.worker = worker
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
        h["spatial"].append(p.spatial_loss * float(self.weight.value()))
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
        text = {"done": f"finished: saved {self.out.text()} and opened it as the current model",
                "stopped": f"stopped at step {self.history['step'][-1] if self.history['step'] else 0}: "
                           f"saved {self.out.text()} (resumable with --resume) and opened it",
                "error": "training failed (see the notification)"}[reason]
        self.status.setText(text)
        self._auto_out = True
        self.out.setText(str(default_out(self.arch.currentText(), self.loss.currentText())))
