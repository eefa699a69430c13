"""Purity vs distance from the patch centre, per sheet (pyqtgraph), with the monkey reference shape."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QLabel, QPushButton

from .base import Dock

SHEET_COLORS = ["#ff6e4a", "#4ac6ff", "#b6ff4a", "#ff4ad8", "#ffd54a", "#4affb0"]


class PurityDock(Dock):
    """Fraction of category-selective units in 1 mm rings around the purest 1 mm region."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, parent)
        import pyqtgraph as pg

        pg.setConfigOptions(antialias=True)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(130)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "distance from patch centre", units=None)
        self.plot.setLabel("left", "purity (fraction selective)")
        self.plot.setYRange(0.0, 1.05)
        self.plot.addLegend(offset=(-10, 10))
        self.content.addWidget(self.plot, 1)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.content.addWidget(self.note)
        self.null_button = QPushButton("Spatial null band (100 position shuffles)")
        self.null_button.setToolTip("Shuffle unit positions 100 times (responses kept) and draw the 5–95 % band of "
                                    "the purity curve under the null: what purity looks like without topography")
        self.null_button.clicked.connect(self.compute_null)
        self.content.addWidget(self.null_button)
        ev = self.state.events
        self.listen(ev.analysis_changed, self.redraw)
        self.listen(ev.category_changed, self.redraw)
        self.listen(ev.model_changed, self._clear)
        self.curves = {}
        self.bands = {}
        if self.state.analysis is not None:
            self.redraw(self.state)

    def compute_null(self):
        """Run the spatial null of every sheet in a worker, then redraw with its band."""
        return self.ctrl.run_null(100, on_done=lambda _: self.redraw(self.state))

    def _clear(self, state):
        self.plot.clear()
        self.curves = {}
        self.bands = {}

    def redraw(self, state):
        import pyqtgraph as pg

        from topoviewer.figures import monkey_reference_purity

        self.plot.clear()
        self.curves = {}
        self.bands = {}
        if state.analysis is None:
            return
        unit = "mm"
        dmax = 0.0
        for i, s in enumerate(state.model.sheets):
            curve = state.purity(s.name)
            if curve is None:
                continue
            unit = "mm" if s.unit == "mm" else "cells"
            color = SHEET_COLORS[i % len(SHEET_COLORS)]
            p = np.asarray(curve.purity, dtype=float)
            ok = np.isfinite(p)
            self.curves[s.name] = self.plot.plot(
                curve.distance_mm[ok], p[ok], pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6,
                symbolBrush=color, name=f"{s.title}",
            )
            null = state.null(s.name)
            band = null.purity_band() if null is not None else None
            if band is not None:
                k = min(len(curve.distance_mm), len(band[0]))
                ok_band = np.isfinite(band[0][:k]) & np.isfinite(band[1][:k])
                d_band = curve.distance_mm[:k][ok_band]
                lo = self.plot.plot(d_band, band[0][:k][ok_band], pen=pg.mkPen(color, width=0))
                hi = self.plot.plot(d_band, band[1][:k][ok_band], pen=pg.mkPen(color, width=0))
                fill = pg.FillBetweenItem(lo, hi, brush=pg.mkBrush(pg.mkColor(color).red(), pg.mkColor(color).green(),
                                                                   pg.mkColor(color).blue(), 50))
                self.plot.addItem(fill)
                self.bands[s.name] = (d_band, band[0][:k][ok_band], band[1][:k][ok_band])
            frac = float(np.mean(state.dprime(s.name) > state.threshold))
            line = pg.InfiniteLine(pos=frac, angle=0, pen=pg.mkPen(color, width=1, style=pg.QtCore.Qt.PenStyle.DotLine))
            self.plot.addItem(line)
            dmax = max(dmax, float(curve.distance_mm.max()))
        if unit == "mm":
            d = np.linspace(0, max(6.0, dmax), 120)
            dashed = pg.mkPen("#aaaaaa", width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine)
            self.plot.plot(d, monkey_reference_purity(d), pen=dashed,
                           name="monkey ML face patch (qualitative)")
        self.plot.setLabel("bottom", f"distance from {state.category} patch centre ({unit})")
        self.plot.setYRange(0.0, 1.05)
        shaded = " Shaded: spatial null, 5–95 % over 100 position shuffles." if self.bands else ""
        self.note.setText(f"{state.category}: d′ > {state.threshold:g}; dotted lines: whole-sheet fraction. "
                          "Centre = purest 1 mm square (ties: highest neighbourhood d′)." + shaded)
