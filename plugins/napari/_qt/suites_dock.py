"""Suites dock: the analysis suites of ``topoviewer analyze --suite`` and ``topoviewer match`` on the
current model, in a worker: a suite's numbers in a table and along the hierarchy, a drawn region
lesioned, matched neurons as points on the sheets with their tuning curves."""

import html
from pathlib import Path

import numpy as np
from magicgui import magicgui
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from topoviewer.analysis.lesion import CONTROLS
from topoviewer.stimuli.faces import TRANSFORMS
from topoviewer.suites import SUITES

from .base import Dock, rich_label
from .controller import notify_error
from .purity_dock import SHEET_COLORS

#: The options of the form each suite uses (the seed: the lesion suite's random lesions, the identity
#: suite's folds and solver).
SUITE_OPTIONS = {"invariance": (), "identity": ("identities", "per_identity", "folds", "transforms", "seed"),
                 "lesion": ("random_lesions", "control", "seed")}


def _page(tabs, title):
    page = QWidget()
    lay = QVBoxLayout(page)
    lay.setContentsMargins(4, 4, 4, 4)
    tabs.addTab(page, title)
    return lay


def _fill(widget):
    """Take the room the dock has (at least the widget's minimum height) rather than ask for more."""
    widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)


def _plot(left, bottom):
    import pyqtgraph as pg

    plot = pg.PlotWidget()
    plot.setMinimumHeight(150)
    _fill(plot)
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setLabel("left", left)
    plot.setLabel("bottom", bottom)
    plot.getAxis("left").enableAutoSIPrefix(False)
    plot.addLegend(offset=(-10, 10))
    return plot


class SuitesDock(Dock):
    """Viewpoint invariance, lesions and matched neurons (docs/science.md, "Identity, viewpoint, lesions and
    neurons"); docs/gui.md, "Analysis suites"."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        lay = self.content
        self.inputs = QTabWidget()
        lay.addWidget(self.inputs)

        # ---- a suite
        page = _page(self.inputs, "Suite")
        self.form = magicgui(
            self.run, call_button="Run suite",
            suite={"label": "Suite", "choices": list(SUITES),
                   "tooltip": "invariance: identity and head-orientation tuning on face-views (225 faces), over "
                              "each sheet and its face patch; identity: identity-selective units and "
                              "cross-validated identity decoding on face-identities; lesion: the model's "
                              "per-class accuracy on the localizer with each sheet's face patch silenced, "
                              "against random lesions"},
            identities={"label": "Identities", "min": 2, "max": 50,
                        "tooltip": "Identities of the face-identities set (identity suite)"},
            per_identity={"label": "Images each", "min": 2, "max": 100,
                          "tooltip": "Images per identity, with nuisance variation (identity suite)"},
            folds={"label": "Folds", "min": 2, "max": 20,
                   "tooltip": "Cross-validation folds of the decoding (≤ images per identity)"},
            transforms={"label": "Transforms", "widget_type": "Select", "choices": list(TRANSFORMS),
                        "tooltip": "Decode also from these transforms of the faces, units chosen on the "
                                   "originals (none selected: originals only; each adds a full decoding)"},
            random_lesions={"label": "Random lesions", "min": 0, "max": 1000,
                            "tooltip": "Size-matched random lesions per sheet (lesion suite)"},
            control={"label": "Random control", "choices": list(CONTROLS),
                     "tooltip": "Random lesions: contiguous regions of the patch's size, or random units"},
            seed={"label": "Seed", "min": 0, "max": 2 ** 31 - 1,
                  "tooltip": "Seed of the random lesions (lesion) or of the folds and the solver (identity)"})
        self.form.call_button.tooltip = "Run the suite on the current model in the background (napari's activity)"
        self.form.suite.changed.connect(self._suite_chosen)
        self._suite_chosen(self.form.suite.value)
        page.addWidget(self.form.native)
        page.addStretch(1)

        # ---- a drawn region lesioned
        page = _page(self.inputs, "Lesion region")
        buttons = QHBoxLayout()
        self.draw_button = QPushButton("Draw region")
        self.draw_button.setToolTip("Add a shapes layer in polygon mode: draw on any map of a sheet (any shapes "
                                    "layer of polygons, rectangles or ellipses counts)")
        self.draw_button.clicked.connect(lambda: self.ctrl.book.region_layer() if self.ctrl.require_model() else None)
        self.restore_button = QPushButton("Restore")
        self.restore_button.setToolTip("Give the units back: the intact model")
        self.restore_button.clicked.connect(self.restore)
        self.restore_button.setEnabled(False)
        buttons.addWidget(self.draw_button)
        buttons.addWidget(self.restore_button)
        page.addLayout(buttons)
        self.lesion_form = magicgui(
            self.lesion_region, call_button="Lesion region",
            random_lesions={"label": "Random lesions", "min": 0, "max": 1000,
                            "tooltip": "Size-matched random lesions of the same sheet, for comparison"},
            control={"label": "Random control", "choices": list(CONTROLS),
                     "tooltip": "Random lesions: contiguous regions of the same size, or random units"},
            seed={"label": "Seed", "min": 0, "max": 2 ** 31 - 1, "tooltip": "Seed of the random lesions"})
        self.lesion_form.call_button.tooltip = ("Silence the units inside the drawn regions: per-class accuracy on "
                                                "the localizer, then the maps of the lesioned model")
        page.addWidget(self.lesion_form.native)
        self.lesion_note = rich_label("Intact model.")
        page.addWidget(self.lesion_note)
        page.addStretch(1)

        # ---- matched neurons
        page = _page(self.inputs, "Neurons")
        self.match_form = magicgui(
            self.match, call_button="Match neurons",
            neural={"label": "Neural file", "mode": "r", "filter": "*.npz *.csv",
                    "tooltip": ".npz or .csv of (stimuli × neurons[ × repetitions]) responses, one row per image "
                               "of the folder in sorted order (as topoviewer match --neural)"},
            stimuli={"label": "Stimuli folder", "mode": "d",
                     "tooltip": "DIR/<category>/*.png: the images the neurons saw"},
            permutations={"label": "Permutations", "min": 0, "max": 100_000,
                          "tooltip": "Stimulus shuffles of each match's permutation p"})
        self.match_form.call_button.tooltip = ("Best unit of every sheet for each neuron: points on the d′ maps, "
                                               "coloured by r (viridis, 0 → 1); select one for its tuning curves")
        page.addWidget(self.match_form.native)
        page.addStretch(1)

        # ---- results
        self.outputs = QTabWidget()
        lay.addWidget(self.outputs, 1)
        page = _page(self.outputs, "Table")
        self.title = rich_label("Choose a suite and press “Run suite”.")
        page.addWidget(self.title)
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(150)
        _fill(self.table)
        page.addWidget(self.table, 1)
        page = _page(self.outputs, "Per sheet")
        self.curves_plot = _plot("value", "sheet (network order)")
        page.addWidget(self.curves_plot, 1)
        self.curves: dict = {}  # label → PlotDataItem
        page = _page(self.outputs, "Tuning")
        self.tuning_note = rich_label("Match neurons, then select a point on a sheet.")
        page.addWidget(self.tuning_note)
        self.tuning_plot = _plot("response (z-scored)", "stimulus (sorted file order)")
        page.addWidget(self.tuning_plot, 1)
        self.tuning: dict = {}  # "neuron" / "unit" → PlotDataItem
        self.result = None
        self.matched = None  # (result, responses, neural, stimuli) of the last match
        self.listen(self.state.events.model_changed, self._model_changed)
        self.listen(self.ctrl.events.job_done, self._job_done)
        self.listen(self.ctrl.events.lesion_changed, self._lesion_changed)
        self.listen(self.ctrl.events.neurons_matched, self.show_matches)

    # ------------------------------------------------------------------ suites
    def _suite_chosen(self, suite):
        for name in {n for used in SUITE_OPTIONS.values() for n in used}:
            getattr(self.form, name).visible = name in SUITE_OPTIONS[suite]

    def run(self, suite: str = "invariance", identities: int = 20, per_identity: int = 10, folds: int = 5,
            transforms: list = (), random_lesions: int = 10, control: str = "region", seed: int = 0):
        """Start `suite` on the current model in a worker; returns the worker (None without a model)."""
        options = {"identities": identities, "per_identity": per_identity, "folds": folds,
                   "transforms": tuple(transforms), "n_random": random_lesions, "control": control, "seed": seed}
        self.title.setText(f"running the {html.escape(suite)} suite…")
        return self.ctrl.run_suite(suite, self.show_result, **options)

    def show_result(self, result: dict):
        """A suite's result (:func:`topoviewer.suites.run_suite`) in the table and, per sheet, in the
        curves; a face-patch lesion's units on the sheets."""
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
        self.outputs.setCurrentIndex(0)
        self._draw_curves(result)
        if result["suite"] == "lesion" and all("patch_centre_mm" in s for s in result["sheets"].values()):
            self._colour_lesions(result)

    def _draw_curves(self, result):
        """The suite's per-sheet numbers along the hierarchy (:func:`topoviewer.suites.suite_curves`)."""
        import pyqtgraph as pg

        from topoviewer.suites import suite_curves

        sheets, curves = suite_curves(result)
        self.curves_plot.clear()
        self.curves = {}
        x = np.arange(len(sheets), dtype=float)
        self.curves_plot.getAxis("bottom").setTicks([list(zip(x, sheets, strict=True))])
        patch = ", face patch"  # a face patch's curve: dashed, in the colour of its all-units curve
        bases = list(dict.fromkeys(label.removesuffix(patch) for label in curves))
        for label, values in curves.items():
            y = np.array([np.nan if v is None else v for v in values], dtype=float)
            style = Qt.PenStyle.DashLine if label.endswith(patch) else Qt.PenStyle.SolidLine
            colour = SHEET_COLORS[bases.index(label.removesuffix(patch)) % len(SHEET_COLORS)]
            self.curves[label] = self.curves_plot.plot(x, y, pen=pg.mkPen(colour, width=2, style=style), symbol="o",
                                                       symbolSize=6, symbolBrush=colour, name=label,
                                                       connect="finite")

    def _colour_lesions(self, result):
        """Each sheet's units: 1 where the suite silenced them (its face patch), 0 elsewhere."""
        from topoviewer.analysis import patch_units

        model = self.state.model
        lesioned = {name: patch_units(model.sheet(name), s["patch_centre_mm"], s["radius_mm"]).astype(np.float64)
                    for name, s in result["sheets"].items()}
        self.ctrl.book.colour_units(lesioned, f"lesioned {result['category']} patch", show=True)

    # ------------------------------------------------------------------ a drawn region
    def lesion_region(self, random_lesions: int = 3, control: str = "region", seed: int = 0):
        """Silence the units inside the drawn regions: the lesion suite on a copy of the intact model
        (per-class accuracy against random lesions), then the lesion on the model itself until Restore.
        Returns the worker (None if nothing could start)."""
        from topoviewer.analysis.lesion import region_units

        model = self.ctrl.require_model()
        if model is None:
            return None
        regions = self.guarded(self.ctrl.book.drawn_regions)
        units = regions and self.guarded(lambda: {k: region_units(model.sheet(k), p) for k, p in regions.items()})
        if not units:
            return None
        empty = [name for name, mask in units.items() if not mask.any()]
        if empty:
            notify_error(f"the region drawn on {', '.join(empty)} holds no unit: draw a larger one")
            return None
        self.restore()  # the accuracy before the lesion is the intact model's
        self.lesion_note.setText("lesioning " + ", ".join(f"{int(m.sum())} units of {html.escape(k)}"
                                                          for k, m in units.items()) + "…")
        return self.ctrl.run_suite("lesion", lambda result: self._lesioned(result, units), units=units,
                                   n_random=random_lesions, control=control, seed=seed)

    def _lesioned(self, result, units):
        self.show_result(result)
        self.ctrl.apply_lesion(units)

    def _lesion_changed(self, units):
        """The controller applied a lesion (`units`, a drawn region's or a workspace's) or restored the model."""
        self.restore_button.setEnabled(units is not None)
        if units is None:
            self.lesion_note.setText("Intact model.")
            return
        self.lesion_note.setText("<b>Lesioned</b>: " + ", ".join(f"{int(m.sum())} units of {html.escape(k)}"
                                                                 for k, m in units.items())
                                 + " silenced in every forward pass (activation, stimulation, suites); the d′ "
                                   "maps are the intact model's. “Restore” gives them back.")

    def restore(self):
        """The intact model again."""
        self.ctrl.restore_lesion()
        self.restore_button.setEnabled(False)

    # ------------------------------------------------------------------ matched neurons
    def match(self, neural: Path = Path(), stimuli: Path = Path(), permutations: int = 100):
        """Start matching the neurons of `neural` to the model's units on `stimuli`; returns the worker."""
        self.tuning_note.setText("matching…")
        return self.ctrl.match_neurons(neural, stimuli, permutations)  # shown by show_matches (neurons_matched)

    def show_matches(self, result, responses, neural, stimuli):
        """Matched neurons as points on the sheets; the best-matched neuron's tuning curves."""
        self.matched = (result, responses, neural, stimuli)
        layers = self.ctrl.book.show_matches(result)
        for layer in layers.values():
            layer.selected_data.events.items_changed.connect(
                lambda *_, layer=layer: self._point_selected(layer))
        best = max((n for n in result["neurons"] if n["r"] is not None), key=lambda n: n["r"], default=None)
        self.outputs.setCurrentIndex(2)
        if best is not None:
            self.show_tuning(best["neuron"])
        else:
            self.tuning_note.setText("no neuron has a matched unit (constant responses)")

    def _point_selected(self, layer):
        chosen = sorted(layer.selected_data)
        if len(chosen) == 1 and self.matched is not None:
            self.show_tuning(int(layer.features["neuron"].iloc[chosen[0]]))

    def show_tuning(self, neuron: int):
        """The tuning curves of `neuron` and its matched unit (z-scored, :func:`topoviewer.suites.match_curves`)."""
        import pyqtgraph as pg

        from topoviewer.suites import match_curves

        result, responses, neural, stimuli = self.matched
        curves = self.guarded(match_curves, result, responses, neural, neuron)
        if curves is None:
            return
        row = result["neurons"][neuron]
        self.tuning_plot.clear()
        x = np.arange(len(stimuli), dtype=float)
        self.tuning = {
            "neuron": self.tuning_plot.plot(x, curves[1], pen=pg.mkPen("#ffffff", width=2), name=f"neuron {neuron}"),
            "unit": self.tuning_plot.plot(x, curves[0], pen=pg.mkPen(SHEET_COLORS[0], width=2),
                                          name=f"{row['sheet']} unit {row['unit']}"),
        }
        extra = "" if row["noise_ceiling"] is None else f", noise ceiling {row['noise_ceiling']:.2f}"
        extra += "" if row["p"] is None else f", p = {row['p']:.3g}"
        self.tuning_note.setText(f"<b>neuron {neuron}</b> ↔ {html.escape(row['sheet'])} unit {row['unit']}: "
                                 f"r = {row['r']:.3f}{extra} ({len(stimuli)} images of "
                                 f"{html.escape(stimuli.name)})")

    def _job_done(self, name, ok):
        if name == "suite" and not ok and self.ctrl.lesion is None:  # a region's suite failed: nothing lesioned
            self.lesion_note.setText("Intact model.")

    def _model_changed(self, state):
        self.matched = None
        self.restore_button.setEnabled(False)
        self.lesion_note.setText("Intact model.")
