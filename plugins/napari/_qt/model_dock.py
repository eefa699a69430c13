"""Model & maps dock: open a model, pick the stimuli, the category, the FWHM; see the summary."""

from __future__ import annotations

import html

from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
)

from topoviewer import defaults
from topoviewer.validate import DEVICES

from .base import Dock, ask_open_path, breakable, group, rich_label

MODEL_FILTER = "Topographic models (*.safetensors *.pt *.pth *.ckpt *.torch);;All files (*)"


class ModelDock(Dock):
    """Open models and choose what the sheet maps show."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        lay = self.content

        box, form = group("Model")
        self.info = rich_label("no model loaded — drop a model file on the viewer or press “Default model”")
        form.addWidget(self.info)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open model file…")
        self.open_button.setToolTip(
            "A topoviewer .safetensors model, or a TDANN/TopoNet checkpoint (.pt/.pth/.ckpt/.torch)")
        self.open_button.clicked.connect(self._ask_model)
        self.sample_button = QPushButton("Default model")
        self.sample_button.setToolTip("The small TDANN shipped with topoviewer")
        self.sample_button.clicked.connect(lambda: self.ctrl.open_model("sample"))
        row.addWidget(self.open_button)
        row.addWidget(self.sample_button)
        form.addLayout(row)
        drow = QHBoxLayout()
        drow.addWidget(QLabel("Device"))
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText("cpu")  # the controller's device until the user picks another
        self.device.setToolTip("Where forward passes run; auto = CUDA when a GPU is present")
        self.device.currentTextChanged.connect(self.ctrl.set_device)
        drow.addWidget(self.device, 1)
        form.addLayout(drow)
        lay.addWidget(box)

        box, form = group("Maps", form=True)
        srow = QHBoxLayout()
        self.stimuli_label = QLabel("procedural localizer")
        self.stimuli_label.setWordWrap(True)
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip("Analyse on your own stimuli: DIR/<category>/*.png")
        self.folder_button.clicked.connect(self._ask_folder)
        self.localizer_button = QPushButton("Localizer")
        self.localizer_button.setToolTip("Analyse on the procedural fLoc-style localizer (default)")
        self.localizer_button.clicked.connect(lambda: self.ctrl.analyse(None))
        self.gratings_button = QPushButton("Gratings")
        self.gratings_button.setToolTip(
            "Early visual maps on sine gratings: orientation (HSV) with pinwheels, OSI, preferred SF and colour; "
            "added as layers, the category maps stay")
        self.gratings_button.clicked.connect(lambda: self.ctrl.analyse_gratings())
        srow.addWidget(self.localizer_button)
        srow.addWidget(self.folder_button)
        srow.addWidget(self.gratings_button)
        form.addRow("Stimuli", self.stimuli_label)
        form.addRow("", srow)
        self.category = QComboBox()
        self.category.setToolTip("Category of the d′ map, the voxel t-map, the patches and the purity rings")
        self.category.currentTextChanged.connect(self._category_chosen)
        form.addRow("Category", self.category)
        self.fwhm = QDoubleSpinBox()
        self.fwhm.setRange(0.1, 10.0)
        self.fwhm.setSingleStep(0.25)
        self.fwhm.setDecimals(2)
        self.fwhm.setSuffix(" mm")
        self.fwhm.setValue(defaults.FWHM_MM)
        self.fwhm.setKeyboardTracking(False)
        self.fwhm.setToolTip("Gaussian smoothing of the simulated fMRI (FWHM); voxels are 0.5 mm")
        self.fwhm.valueChanged.connect(self.ctrl.set_fwhm)
        form.addRow("fMRI FWHM", self.fwhm)
        self.dprime_threshold = self._threshold_box(0.05, 5.0, 0.05, self.state.threshold,
                                                    "A unit is selective when its d′ exceeds this (maps, purity)")
        self.dprime_threshold.valueChanged.connect(
            lambda v: self.guarded(self.state.set_thresholds, dprime=float(v)))
        form.addRow("d′ threshold", self.dprime_threshold)
        self.t_threshold = self._threshold_box(0.5, 100.0, 0.5, self.state.t_threshold,
                                               "A voxel is selective when its t exceeds this (patch outlines)")
        self.t_threshold.valueChanged.connect(lambda v: self.guarded(self.state.set_thresholds, t=float(v)))
        form.addRow("voxel t threshold", self.t_threshold)
        self.colour = QComboBox()
        self.colour.addItems(["d′ (category)", "activation", "stimulation"])
        self.colour.setToolTip("What colours the unit positions (layers “<sheet> · units”, hidden by default)")
        self.colour.currentTextChanged.connect(self._colour_units)
        form.addRow("Units coloured by", self.colour)
        fit = QPushButton("Fit view")
        fit.clicked.connect(self.ctrl.book.fit)
        form.addRow("", fit)
        lay.addWidget(box)

        box, blay = group("Summary")
        self.summary = rich_label("")
        blay.addWidget(self.summary)
        lay.addWidget(box)

        lay.addStretch(1)

        ev = self.state.events
        self.listen(ev.model_changed, self._on_model)
        self.listen(ev.analysis_changed, self._on_analysis)
        self.listen(ev.category_changed, self._on_category)
        self.listen(ev.voxel_t_changed, self._on_analysis)
        if self.state.model is not None:
            self._on_model(self.state)
        if self.state.analysis is not None:
            self._on_analysis(self.state)

    @staticmethod
    def _threshold_box(low, high, step, value, tip):
        box = QDoubleSpinBox()
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setValue(value)
        box.setToolTip(tip)
        return box

    # ------------------------------------------------------------------ actions
    def _ask_model(self):
        path = ask_open_path(self, "Open a topographic model", MODEL_FILTER)
        if path:
            self.ctrl.open_model(path)

    def _ask_folder(self):
        path = ask_open_path(self, "Stimulus folder (one subfolder per category)", "", directory=True)
        if path:
            self.ctrl.analyse_folder(path)

    def _category_chosen(self, text):
        if text and self.state.analysis is not None and text != self.state.category:
            self.guarded(self.state.set_category, text)

    def _colour_units(self, text):
        st = self.state
        if st.model is None:
            return
        if text.startswith("activation"):
            if st.activations is None:
                self.guarded(_raise, "no activations yet: run a forward pass on an image first (Images dock)")
                return
            self.ctrl.book.colour_units(st.activations.mean, "activation")
        elif text.startswith("stimulation"):
            r = st.stimulation
            if r is None:
                self.guarded(_raise, "no stimulation yet: click a sheet with the Stimulate tool first")
                return
            self.ctrl.book.colour_units({r.layer: r.activity, r.next_layer: r.propagated}, "stimulation")
        elif st.analysis is not None:
            self.ctrl.book.colour_units({n: st.dprime(n) for n in st.analysis.sheets}, f"d′ {st.category}")

    # ------------------------------------------------------------------ listeners
    def _on_model(self, state):
        m = state.model
        sheets = "".join(
            f"<br>&nbsp;&nbsp;<b>{html.escape(s.title)}</b>: {s.n_units} units on "
            f"{s.extent_mm[0]:g} × {s.extent_mm[1]:g} {s.unit}" for s in m.sheets
        )
        source = breakable(html.escape(state.source if len(state.source) < 60 else "…" + state.source[-57:]))
        step = f" · <i>training step {state.training_step}</i>" if state.training_step is not None else ""
        from topoviewer.analysis.photos import provenance

        about = "".join(f"<br><small>{html.escape(line)}</small>" for line in provenance(m.meta or {}) if line)
        self.info.setText(f"<b>{html.escape(m.name)}</b> ({html.escape(m.arch)}, {m.input_size} px){step}"
                          f"<br><small>{source}</small>{sheets}{about}")
        self.summary.setText("analysing…")

    def _on_analysis(self, state):
        if state.analysis is None:
            return
        self.category.blockSignals(True)
        self.category.clear()
        self.category.addItems(state.categories)
        self.category.setCurrentText(state.category)
        self.category.blockSignals(False)
        self.stimuli_label.setText(breakable(html.escape(state.analysis.stimuli_name)))
        self._show_settings(state)
        self._summary(state)

    def _on_category(self, state):
        if self.category.currentText() != state.category:
            self.category.blockSignals(True)
            self.category.setCurrentText(state.category)
            self.category.blockSignals(False)
        self._show_settings(state)
        self._summary(state)

    def _show_settings(self, state):
        """The FWHM and threshold boxes show the state's values (set elsewhere, e.g. by a workspace)."""
        for box, value in ((self.fwhm, state.fwhm_mm), (self.dprime_threshold, state.threshold),
                           (self.t_threshold, state.t_threshold)):
            if box.value() != round(value, box.decimals()):
                box.blockSignals(True)
                box.setValue(value)
                box.blockSignals(False)

    def _summary(self, state):
        import numpy as np

        from topoviewer.analysis import find_patches

        cat = state.category
        rows = []
        for name, maps in state.analysis.sheets.items():
            frac = float(np.mean(maps.dprime[cat] > state.threshold))
            _, sizes = find_patches(state.t_map(name), threshold=state.t_threshold)
            curve = state.purity(name)
            pur = "—" if curve is None else " ".join(
                "—" if not np.isfinite(p) else f"{p:.2f}" for p in curve.purity[:5])
            rows.append(
                f"<b>{html.escape(name)}</b>: {100 * frac:.1f}% units d′ &gt; {state.threshold:g}; "
                f"patches (t &gt; {state.t_threshold:g}, FWHM {state.fwhm_mm:g} mm): "
                f"{len(sizes)} {'(' + ', '.join(map(str, sizes[:4])) + ' voxels)' if sizes else ''}"
                f"<br>&nbsp;&nbsp;purity by 1 mm ring: {pur}"
            )
        self.summary.setText(f"<u>{html.escape(cat)}</u><br>" + "<br>".join(rows))


def _raise(message):
    from topoviewer.errors import TopoviewerError

    raise TopoviewerError(message)
