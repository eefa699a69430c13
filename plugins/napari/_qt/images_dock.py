"""Images dock: forward passes on a picture, an image layer or a folder (activation maps per sheet)."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton

from .base import Dock, ask_open_path, group

IMAGE_FILTER = "Pictures (*.png *.jpg *.jpeg *.tif *.tiff *.bmp);;All files (*)"


class ImagesDock(Dock):
    """Run the current model on your own images and see every sheet's activation."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        lay = self.content
        box, blay = group("Open")
        row = QHBoxLayout()
        b1 = QPushButton("Image…")
        b1.setToolTip("A picture (png/jpg/tif): its activation on every sheet")
        b1.clicked.connect(self._ask_image)
        b2 = QPushButton("Folder…")
        b2.setToolTip("A folder of pictures: mean activation; with DIR/<category>/ subfolders also a d′ contrast")
        b2.clicked.connect(self._ask_folder)
        row.addWidget(b1)
        row.addWidget(b2)
        blay.addLayout(row)
        blay.addWidget(QLabel("…or drop pictures / a folder on the viewer."))
        lay.addWidget(box)

        box, blay = group("Image layer")
        row = QHBoxLayout()
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Any image layer: grey, RGB, or a stack of grey images")
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run_selected)
        row.addWidget(self.layer_combo, 1)
        row.addWidget(self.run_button)
        blay.addLayout(row)
        lay.addWidget(box)

        self.result = QLabel("")
        self.result.setWordWrap(True)
        lay.addWidget(self.result)
        lay.addStretch(1)

        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.destroyed.connect(_layer_disconnector(self.viewer, self._refresh_layers))
        self.listen(self.state.events.activations_changed, self._on_activations)
        self._refresh_layers()

    def _image_layers(self):
        from napari.layers import Image

        from ..layers import KEY

        return [lyr for lyr in self.viewer.layers
                if isinstance(lyr, Image) and str(lyr.metadata.get(KEY, "input/")).startswith("input/")]

    def _refresh_layers(self, *_):
        current = self.layer_combo.currentText()
        names = [lyr.name for lyr in self._image_layers()]
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)

    def run_selected(self):
        name = self.layer_combo.currentText()
        layers = [lyr for lyr in self._image_layers() if lyr.name == name]
        if not layers:
            self.guarded(_raise, "no image layer chosen: open or drop a picture first")
            return None
        return self.ctrl.run_layer(layers[0])

    def open_path(self, path):
        """Open a picture or a folder through the plugin's reader (as a drop would)."""
        return self.viewer.open(str(path), plugin="topoviewer")

    def _ask_image(self):
        path = ask_open_path(self, "Run a picture through the model", IMAGE_FILTER)
        if path:
            self.open_path(path)

    def _ask_folder(self):
        path = ask_open_path(self, "Run a folder of pictures through the model", "", directory=True)
        if path:
            self.open_path(path)

    def _on_activations(self, state):
        act = state.activations
        if act is None:
            self.result.setText("")
            return
        lines = [f"<b>{act.name}</b>: {act.n_images} image{'s' if act.n_images != 1 else ''}"]
        for sheet, v in act.mean.items():
            v = np.asarray(v)
            line = f"{sheet}: mean {v.mean():.3f}, max {v.max():.3f}, active units {100 * np.mean(v > 0):.0f}%"
            if sheet in act.contrast:
                c = act.contrast[sheet]
                share = 100 * np.mean(c > state.threshold)
                line += f"; d′ {act.contrast_category} &gt; {state.threshold:g}: {share:.1f}%"
            lines.append(line)
        self.result.setText("<br>".join(lines))


def _layer_disconnector(viewer, fn):
    def disconnect(*_):
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed):
            try:
                ev.disconnect(fn)
            except (TypeError, ValueError, RuntimeError):
                pass
    return disconnect


def _raise(message):
    from topoviewer.errors import TopoviewerError

    raise TopoviewerError(message)
