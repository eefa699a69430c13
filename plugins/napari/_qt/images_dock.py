"""Images dock: forward passes on a picture, an image layer or a folder (activation maps per sheet).

It also answers "does the patch see this picture?": the picture next to what the network
actually receives (:meth:`TopoModel.input_pixels`), and a table with, per sheet and category,
the patch's mean response to each picture beside its localizer means for the category and for
everything else (:func:`topoviewer.analysis.photos.patch_table`, exportable as CSV).
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QAbstractItemView, QComboBox, QHBoxLayout, QLabel, QPushButton, QTableWidget, \
    QTableWidgetItem, QVBoxLayout

from .base import Dock, ask_open_path, ask_save_path, breakable, group

#: Edge of the picture / network-input thumbnails (px).
THUMB = 120
#: Header of the patch table (the keys of topoviewer.analysis.photos.PATCH_TABLE_FIELDS, in order).
TABLE_HEADER = ("picture", "sheet", "category", "patch units", "response", "localizer: category",
                "localizer: others")

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

        box, blay = group("What the network sees")
        row = QHBoxLayout()
        self.photo_view, self.input_view = QLabel(), QLabel()
        for view, caption in ((self.photo_view, "picture"), (self.input_view, "network input")):
            col = QVBoxLayout()
            view.setFixedSize(THUMB, THUMB)
            view.setAlignment(Qt.AlignmentFlag.AlignCenter)
            col.addWidget(view)
            col.addWidget(QLabel(caption), 0, Qt.AlignmentFlag.AlignHCenter)
            row.addLayout(col)
        blay.addLayout(row)
        lay.addWidget(box)

        box, blay = group("Does the patch see it?")
        self.table = QTableWidget(0, len(TABLE_HEADER))
        self.table.setHorizontalHeaderLabels(TABLE_HEADER)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(150)
        self.table.setMaximumHeight(220)
        self.table.setToolTip("Mean response of each category's patch (voxel t > threshold) to the picture, "
                              "beside its mean response to the localizer's images of the category and of the rest")
        blay.addWidget(self.table)
        self.csv_button = QPushButton("Table (CSV)…")
        self.csv_button.clicked.connect(self._ask_csv)
        blay.addWidget(self.csv_button)
        lay.addWidget(box)
        lay.addStretch(1)

        self.viewer.layers.events.inserted.connect(self._refresh_layers)
        self.viewer.layers.events.removed.connect(self._refresh_layers)
        self.destroyed.connect(_layer_disconnector(self.viewer, self._refresh_layers))
        self.listen(self.state.events.activations_changed, self._on_activations)
        for sig in (self.state.events.category_changed, self.state.events.voxel_t_changed):
            self.listen(sig, self._fill_table)
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

    def _fill_table(self, state=None):
        """The patch table at the current FWHM and thresholds (state.patch_table)."""
        rows = self.state.patch_table()
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, value in enumerate(row.values()):
                text = "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.csv_button.setEnabled(bool(rows))

    def save_table(self, path):
        """Write the patch table as CSV (what the button does after its dialog)."""
        out = self.guarded(self.state.save_patch_table, path)
        if out is not None:
            self.result.setText(breakable(f"wrote {out}"))
        return out

    def _ask_csv(self):
        act = self.state.activations
        stem = "patch-table" if act is None else f"patch-table-{act.name}"
        path = ask_save_path(self, "Save the patch table", f"{stem}.csv", "CSV (*.csv)")
        if path:
            self.save_table(path)

    def _show_pictures(self, act):
        for view, image in ((self.photo_view, None if act is None else act.images),
                            (self.input_view, None if act is None else act.network_input)):
            if image is None:
                view.clear()
                continue
            image = np.asarray(image)
            if image.ndim == 4 or (image.ndim == 3 and image.shape[-1] != 3):
                image = image[0]  # a stack: its first picture
            view.setPixmap(_pixmap(image).scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation))

    def _on_activations(self, state):
        act = state.activations
        self._show_pictures(act)
        self._fill_table()
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


def _pixmap(image) -> QPixmap:
    """A (H, W) grey or (H, W, 3) colour picture in [0, 1] → a QPixmap."""
    arr = np.ascontiguousarray(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255).astype(np.uint8)
    h, w = arr.shape[:2]
    fmt = QImage.Format.Format_RGB888 if arr.ndim == 3 else QImage.Format.Format_Grayscale8
    return QPixmap.fromImage(QImage(arr.data, w, h, arr.strides[0], fmt).copy())


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
