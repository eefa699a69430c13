"""Stimulate dock: the click-to-stimulate tool, the read-out, the log table and inside-vs-outside."""

from __future__ import annotations
from magicgui.widgets import ComboBox, Container, FloatSpinBox
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
)

from .base import Dock, ask_save_path, group, rich_label

#: Log columns shown in the table (all of LOG_FIELDS go to the CSV).
TABLE_COLUMNS = [
    ("n", "#"), ("site", "site"), ("layer", "sheet"), ("x_mm", "x"), ("y_mm", "y"), ("radius_mm", "r"),
    ("stimulated_units", "units"), ("next_patch_mean", "patch"), ("baseline", "baseline"),
    ("next_patch_delta", "Δ"), ("latency_ms", "ms"),
]


class StimulateDock(Dock):
    """Microstimulation (docs/science.md; methods §6): click a sheet; the next sheet's patch read-out and a log."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        lay = self.content
        tool = self.ctrl.tool

        box, blay = group("Tool")
        self.tool_button = QPushButton("Stimulate (click a sheet map)")
        self.tool_button.setCheckable(True)
        self.tool_button.setToolTip(
            "While on, a left click on any sheet map stimulates a disc there and propagates it to the next sheet.\n"
            "Shift/Ctrl/Alt-clicks are left to napari.")
        self.tool_button.toggled.connect(self._toggle)
        tool.on_toggled.append(self._tool_toggled)
        blay.addWidget(self.tool_button)
        self.radius = FloatSpinBox(
            label="Radius (mm)", value=self.state.stim_radius_mm, min=0.1, max=20.0, step=0.25,
            tooltip="Radius of the stimulated disc; activity decays as a Gaussian (σ = 1 mm) from its centre")
        self.radius.changed.connect(self._radius)
        self.sheet_combo = ComboBox(label="Sheet", tooltip="The sheet stimulated by “Inside vs outside”")
        blay.addWidget(Container(widgets=[self.radius, self.sheet_combo]).native)
        self.io_button = QPushButton("Inside vs outside")
        self.io_button.setToolTip("Stimulate the patch centre and a random site outside every patch, in one click")
        self.io_button.clicked.connect(self.inside_outside)
        blay.addWidget(self.io_button)
        lay.addWidget(box)

        box, blay = group("Read-out")
        self.readout = rich_label("Turn the tool on and click a sheet map.")
        blay.addWidget(self.readout)
        lay.addWidget(box)

        box, blay = group("Log")
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels([c[1] for c in TABLE_COLUMNS])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(110)
        blay.addWidget(self.table)
        row = QHBoxLayout()
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._ask_csv)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.state.clear_log)
        row.addWidget(self.export_button)
        row.addWidget(clear)
        blay.addLayout(row)
        lay.addWidget(box, 1)

        ev = self.state.events
        self.listen(ev.model_changed, self._on_model)
        self.listen(ev.stimulated, self._on_stimulated)
        self.listen(ev.log_changed, self._on_log)
        self.listen(ev.stim_radius_changed, self._on_radius)
        if self.state.model is not None:
            self._on_model(self.state)
        self._on_log(self.state)

    # ------------------------------------------------------------------ tool
    def _toggle(self, on):
        self.ctrl.tool.enabled = on

    def _tool_toggled(self, on):
        try:
            if self.tool_button.isChecked() != on:
                self.tool_button.setChecked(on)
        except RuntimeError:  # the dock is gone
            pass

    def _radius(self, value):
        self.guarded(self.state.set_stim_radius, float(value))

    def inside_outside(self):
        sheet = self.sheet_combo.value
        if not sheet:
            return None
        out = self.ctrl.stimulate_inside_outside(sheet)
        if out is None:
            return None
        a, b = out
        self.readout.setText(
            self._readout_html(a) + "<hr>" + self._readout_html(b)
            + f"<br><b>Δ inside {a.next_patch_delta:+.3f} vs Δ outside {b.next_patch_delta:+.3f}</b> "
            f"({a.next_layer} {self.state.category} patch, from its baseline {a.baseline:.3f})"
        )
        return out

    # ------------------------------------------------------------------ listeners
    def _on_model(self, state):
        self.sheet_combo.choices = [s.name for s in state.model.sheets[:-1]]
        self.readout.setText("Turn the tool on and click a sheet map.")

    def _on_radius(self, state):
        if self.radius.value != state.stim_radius_mm:
            self.radius.value = state.stim_radius_mm

    def _readout_html(self, r):
        where = {"inside": "inside the patch", "outside": "outside every patch"}.get(r.site, "clicked site")
        clipped = " (disc clipped by the edge)" if r.clipped else ""
        return (
            f"<b>{r.layer}</b> {where} ({r.site_mm[0]:.2f}, {r.site_mm[1]:.2f}) mm, "
            f"r = {r.radius_mm:g} mm: "
            f"{r.stimulated_units} units{clipped}<br>"
            f"→ <b>{r.next_layer}</b> {self.state.category} patch ({len(r.next_patch_units)} units): "
            f"<b>{r.next_patch_mean:.3f}</b>, <b>Δ {r.next_patch_delta:+.3f}</b> from the baseline "
            f"{r.baseline:.3f} (its read-out with {r.layer} silent); whole sheet {r.next_mean:.3f}"
        )

    def _on_stimulated(self, state, r):
        self.readout.setText(self._readout_html(r))

    def _on_log(self, state):
        rows = state.log
        start = 0 if len(rows) < self.table.rowCount() else max(0, self.table.rowCount() - 1)
        self.table.setRowCount(len(rows))
        for i in range(start, len(rows)):
            row = rows[i]
            for j, (key, _) in enumerate(TABLE_COLUMNS):
                v = row.get(key, "")
                text = f"{v:.3g}" if isinstance(v, float) else str(v)
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        if rows:
            self.table.scrollToBottom()

    # ------------------------------------------------------------------ export
    def save_csv(self, path):
        return self.guarded(self.state.save_log, path)

    def _ask_csv(self):
        path = ask_save_path(self, "Save the stimulation log", "stimulation-log.csv", "CSV (*.csv)")
        if path:
            self.save_csv(path)
