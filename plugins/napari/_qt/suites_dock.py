"""Suites dock: the analysis suites of ``topoviewer analyze --suite`` on the current model, in a
worker; their numbers in a table, and the lesioned units coloured on the sheets."""

from __future__ import annotations

import html

import numpy as np
from magicgui import magicgui
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from topoviewer.analysis.lesion import CONTROLS

from .base import Dock, group, rich_label

#: The suites offered here: those that run in seconds on a CPU. The identity suite (an SVM per
#: fold, unit subset and sheet on 500 faces) takes minutes there: ``topoviewer analyze --suite identity``.
GUI_SUITES = ("invariance", "lesion")


class SuitesDock(Dock):
    """Viewpoint invariance and face-patch lesions (docs/science.md, "Identity, viewpoint, lesions and neurons")."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        lay = self.content

        box, blay = group("Suite")
        self.form = magicgui(
            self.run, call_button="Run suite",
            suite={"label": "Suite", "choices": list(GUI_SUITES),
                   "tooltip": "invariance: identity and head-orientation tuning on face-views (225 faces), over "
                              "each sheet and its face patch; lesion: the model's per-class accuracy on the "
                              "localizer with each sheet's face patch silenced, against random lesions"},
            random_lesions={"label": "Random lesions", "min": 0, "max": 1000,
                            "tooltip": "Size-matched random lesions per sheet (lesion suite)"},
            control={"label": "Random control", "choices": list(CONTROLS),
                     "tooltip": "Random lesions: contiguous regions of the patch's size, or random units"},
            seed={"label": "Seed", "min": 0, "max": 2 ** 31 - 1, "tooltip": "Seed of the random lesions"})
        self.form.call_button.tooltip = "Run the suite on the current model in the background (napari's activity)"
        self.form.suite.changed.connect(self._suite_chosen)
        self._suite_chosen(self.form.suite.value)
        blay.addWidget(self.form.native)
        lay.addWidget(box)

        box, blay = group("Result")
        self.title = rich_label("Choose a suite and press “Run suite”.")
        blay.addWidget(self.title)
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(110)
        blay.addWidget(self.table)
        lay.addWidget(box, 1)
        self.result = None

    def _suite_chosen(self, suite):
        for w in (self.form.random_lesions, self.form.control, self.form.seed):
            w.visible = suite == "lesion"

    def run(self, suite: str = "invariance", random_lesions: int = 10, control: str = "region", seed: int = 0):
        """Start `suite` on the current model in a worker; returns the worker (None without a model)."""
        self.title.setText(f"running the {html.escape(suite)} suite…")
        return self.ctrl.run_suite(suite, self.show_result, n_random=random_lesions, control=control, seed=seed)

    def show_result(self, result: dict):
        """A suite's result (:func:`topoviewer.suites.run_suite`) in the table; a lesion's units on the sheets."""
        from topoviewer.suites import suite_table

        self.result = result
        columns, rows = suite_table(result)
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                item = QTableWidgetItem("—" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v))
                if not isinstance(v, str):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)
        self.title.setText(f"<b>{html.escape(result['suite'])}</b> suite: {html.escape(result['model'])} on "
                           f"{html.escape(result['stimuli'])}")
        if result["suite"] == "lesion":
            self._colour_lesions(result)

    def _colour_lesions(self, result):
        """Each sheet's units: 1 where the suite silenced them (its face patch), 0 elsewhere."""
        from topoviewer.analysis import patch_units

        model = self.state.model
        lesioned = {name: patch_units(model.sheet(name), s["patch_centre_mm"], s["radius_mm"]).astype(np.float64)
                    for name, s in result["sheets"].items()}
        self.ctrl.book.colour_units(lesioned, f"lesioned {result['category']} patch", show=True)
