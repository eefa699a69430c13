"""The plugin's model: what is loaded, what has been computed, what was stimulated.

:class:`TopoState` is plain Python (no Qt, no napari), like napari-animation's
``Animation``: widgets in ``_qt/`` and the layer book listen to its :class:`StateEvents`
(psygnal signals) and call its methods; the GUI thread is the only writer. Everything
slow (loading, forward passes, training) happens elsewhere (thread workers) and hands
its results to ``set_*`` methods here.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from psygnal import EmitLoopError, Signal, SignalGroup, SignalInstance

from topoviewer import defaults
from topoviewer.errors import TopoviewerError

__all__ = ["StateEvents", "TopoState", "Activations", "LOG_FIELDS", "UserErrorSignal", "signal", "ring_pixel_mm",
           "prepare_maps"]


class UserErrorSignal(SignalInstance):
    """A psygnal signal whose slots' user errors reach the emitter as themselves.

    psygnal wraps every slot exception in an ``EmitLoopError``; unwrapping a
    :class:`TopoviewerError` keeps the plugin's rule: a user mistake is one line (one
    notification, via the caller's ``except TopoviewerError``) and the viewer keeps working.
    """

    def emit(self, *args, **kwargs):
        try:
            return super().emit(*args, **kwargs)
        except EmitLoopError as exc:
            if isinstance(exc.__cause__, TopoviewerError):
                raise exc.__cause__ from None
            raise


def signal(*types) -> Signal:
    """A :class:`psygnal.Signal` of ``types`` that emits as a :class:`UserErrorSignal`."""
    return Signal(*types, signal_instance_class=UserErrorSignal)


class StateEvents(SignalGroup):
    """What the state announces (psygnal, napari's event library); slots run synchronously."""

    model_changed = signal(object)        # (state)            new model (analysis cleared)
    analysis_changed = signal(object)     # (state)            new analysis (maps of every sheet)
    early_changed = signal(object)        # (state)            new early visual maps (analysis on gratings)
    category_changed = signal(object)     # (state)
    voxel_t_changed = signal(object)      # (state)            FWHM changed, voxel t recomputed
    activations_changed = signal(object)  # (state)
    stimulated = signal(object, object)   # (state, result)    one stimulation
    log_changed = signal(object)          # (state)
    stim_radius_changed = signal(object)  # (state)            new stimulation radius
    busy = signal(str, int, int, str)     # (task, done, total, text)  background work; total 0 = finished


@dataclass
class Activations:
    """Forward-pass results on user images: per sheet a mean activation and maybe a contrast."""

    name: str
    n_images: int
    mean: dict  # sheet → (N,)
    contrast: dict = field(default_factory=dict)  # sheet → (N,) d′ of contrast_category vs the rest
    contrast_category: str | None = None
    categories: list = field(default_factory=list)
    images: np.ndarray | None = None  # the pictures as run (kept for the workspace)
    labels: np.ndarray | None = None
    responses: dict = field(default_factory=dict)  # sheet → (n_images, N), for the patch table
    names: list = field(default_factory=list)  # one name per picture
    network_input: np.ndarray | None = None  # (S, S) what the network received for the first picture


#: Columns of the stimulation log (and its CSV).
LOG_FIELDS = (
    "n", "time", "model", "layer", "next_layer", "x_mm", "y_mm", "radius_mm", "stimulated_units",
    "next_patch_units", "next_patch_mean", "baseline", "next_patch_delta", "ratio", "next_mean", "site", "clipped",
    "latency_ms",
)


class TopoState:
    """Current model, analysis cache, selected category/FWHM, activations and the stimulation log."""

    def __init__(self):
        self.events = StateEvents()
        self.model = None
        self.source: str = ""
        self.stimuli = None
        self.analysis = None
        self.early = None  # the analysis on gratings (orientation, OSI, SF, colour maps, pinwheels)
        self.category: str = "faces"
        self.fwhm_mm: float = defaults.FWHM_MM
        self.voxel_mm: float = defaults.VOXEL_MM
        self.threshold: float = defaults.DPRIME_THRESHOLD
        self.t_threshold: float = defaults.VOXEL_T_THRESHOLD
        self.voxel_t: dict = {}
        self.activations: Activations | None = None
        self.stimulation = None  # the last StimulationResult
        self.stim_radius_mm: float = defaults.STIM_RADIUS_MM
        self.log: list = []
        self.training_step: int | None = None  # set while maps come from a training checkpoint
        self._stimulators: dict = {}
        self._cache: dict = {}

    # ------------------------------------------------------------------ setters
    def set_model(self, model, source="", stimuli=None, analysis=None, training_step=None, prepared=None):
        """A new current model. Clears everything derived from the previous one.

        ``prepared``: derived maps of ``analysis`` computed off the GUI thread (:meth:`prepare`).
        """
        self.model = model
        self.source = str(source)
        self.stimuli = stimuli
        self.analysis = None
        self.early = None
        self.voxel_t = {}
        self.activations = None
        self.stimulation = None
        self.training_step = training_step
        self._stimulators.clear()
        self._cache.clear()
        self.events.model_changed.emit(self)
        if analysis is not None:
            self.set_analysis(analysis, stimuli, prepared=prepared)

    def set_analysis(self, analysis, stimuli=None, voxel_t=None, prepared=None):
        """The maps of every sheet for the current model (from ``pipeline.iter_analysis``).

        ``prepared``: derived maps computed off the GUI thread by :meth:`prepare` (entries made
        for other settings than the current ones are never looked up).
        """
        if self.model is None:
            raise TopoviewerError("no model is loaded; open a model before analysing")
        self.analysis = analysis
        if stimuli is not None:
            self.stimuli = stimuli
        self.voxel_t = voxel_t or {name: dict(m.voxel_t) for name, m in analysis.sheets.items()}
        self._stimulators.clear()
        self._cache.clear()
        self._cache.update(prepared or {})
        if self.category not in analysis.categories:
            self.category = "faces" if "faces" in analysis.categories else analysis.categories[0]
        self.events.analysis_changed.emit(self)

    def set_early(self, analysis):
        """The early visual maps of every sheet (``pipeline.iter_analysis`` on gratings); the category
        analysis, its maps and the stimulation experiment stay as they are."""
        if self.model is None:
            raise TopoviewerError("no model is loaded; open a model before analysing")
        if not analysis.sheets or any(m.early is None for m in analysis.sheets.values()):
            raise TopoviewerError("early visual maps come from an analysis on gratings")
        self.early = analysis
        self.events.early_changed.emit(self)

    def set_category(self, category: str):
        if self.analysis is not None and category not in self.analysis.categories:
            raise TopoviewerError(
                f"unknown category {category!r}; the analysis has {', '.join(self.analysis.categories)}"
            )
        if category != self.category:
            self.category = category
            self._stimulators.clear()  # the stimulated/read-out patch follows the category
            self.events.category_changed.emit(self)

    def set_thresholds(self, dprime: float | None = None, t: float | None = None):
        """New d′ (selective unit) and/or voxel t (patch) thresholds; every map, outline and ring follows."""
        for name, value in (("d′ threshold", dprime), ("voxel t threshold", t)):
            if value is not None and not (np.isfinite(value) and value > 0):
                raise TopoviewerError(f"the {name} must be a positive number, got {value}")
        changed = False
        if dprime is not None and float(dprime) != self.threshold:
            self.threshold, changed = float(dprime), True
        if t is not None and float(t) != self.t_threshold:
            self.t_threshold, changed = float(t), True
        if changed:
            self._stimulators.clear()  # the stimulated and read-out patches are t > threshold regions
            self.events.category_changed.emit(self)

    def set_stim_radius(self, radius_mm: float):
        """The radius (mm) of the disc the next stimulations clamp; the Stimulate dock follows."""
        if not (np.isfinite(radius_mm) and radius_mm > 0):
            raise TopoviewerError(f"the stimulation radius must be a positive number of mm, got {radius_mm}")
        if float(radius_mm) != self.stim_radius_mm:
            self.stim_radius_mm = float(radius_mm)
            self.events.stim_radius_changed.emit(self)

    def set_voxel_t(self, fwhm_mm: float, voxel_t: dict):
        """Voxel t maps recomputed at another FWHM (``{sheet: {category: map}}``)."""
        self.fwhm_mm = float(fwhm_mm)
        self.voxel_t = voxel_t
        self._cache = {k: v for k, v in self._cache.items() if k[0] != "patch"}
        self._stimulators.clear()  # patches are voxel-t regions: they depend on the FWHM
        self.events.voxel_t_changed.emit(self)

    def set_activations(self, activations: Activations | None):
        self.activations = activations
        self.events.activations_changed.emit(self)

    def report(self, task: str, done: int, total: int, text: str = ""):
        """Progress of background work, for progress bars (``total == 0``: finished)."""
        self.events.busy.emit(task, done, total, text)

    # ------------------------------------------------------------------ derived maps
    @property
    def sheet_names(self) -> list:
        return [] if self.model is None else [s.name for s in self.model.sheets]

    @property
    def categories(self) -> list:
        return [] if self.analysis is None else list(self.analysis.categories)

    def dprime(self, sheet: str, category: str | None = None) -> np.ndarray:
        return self.analysis.sheets[sheet].dprime[category or self.category]

    def t_map(self, sheet: str, category: str | None = None) -> np.ndarray:
        return self.voxel_t[sheet][category or self.category]

    def patch_labels(self, sheet: str, category: str | None = None) -> np.ndarray:
        """Voxel patches of the t map (t > threshold, ≥ PATCH_MIN_VOXELS connected voxels), 0 elsewhere."""
        key = ("patch", sheet, category or self.category, self.t_threshold)
        if key not in self._cache:
            self._cache[key] = _patch_labels(self.t_map(sheet, category), self.t_threshold)
        return self._cache[key]

    def prepare(self, model, analysis, stimuli=None) -> dict:
        """:func:`prepare_maps` at this state's current settings (callable from a worker: it writes nothing)."""
        return prepare_maps(model, analysis, stimuli, category=self.category, threshold=self.threshold,
                            t_threshold=self.t_threshold, fwhm_mm=self.fwhm_mm, voxel_mm=self.voxel_mm)

    def purity(self, sheet: str, category: str | None = None):
        """PurityCurve of the category-selective units (d′ > threshold) of a sheet, or None if undefined.

        Read from the analysis's :class:`~topoviewer.pipeline.SheetMaps` (computed and cached there,
        the same curve the CLI and the figures give).
        """
        try:
            return self.analysis.sheets[sheet].purity(category or self.category, self.threshold)
        except TopoviewerError:
            return None

    def _null_key(self, sheet, category):
        return ("null", sheet, category or self.category, self.threshold, self.fwhm_mm, self.voxel_mm)

    def null(self, sheet: str, category: str | None = None):
        """The spatial null of a sheet at the current category, d′ threshold and FWHM, if computed."""
        return self._cache.get(self._null_key(sheet, category))

    def compute_null(self, sheet: str, n_shuffles: int = 100, category: str | None = None):
        """Compute (on the calling thread) and cache the spatial null of a sheet from the cached responses."""
        from topoviewer.analysis import spatial_null

        if self.analysis is None or self.stimuli is None:
            raise TopoviewerError("no analysis yet: load a model and wait for its maps")
        key = self._null_key(sheet, category)
        if key not in self._cache:
            self._cache[key] = spatial_null(
                self.model.sheet(sheet), self.analysis.responses[sheet], self.stimuli.labels,
                self.stimuli.categories, n_shuffles=n_shuffles, threshold=self.threshold, fwhm_mm=self.fwhm_mm,
                voxel_mm=self.voxel_mm, purity_category=category or self.category)
        return self._cache[key]

    def purity_rings(self, sheet: str, category: str | None = None):
        """The purity-ring raster of a sheet (pixel :func:`ring_pixel_mm`), or None if undefined."""
        from topoviewer.analysis import purity_rings

        curve = self.purity(sheet, category)
        if curve is None:
            return None
        s = self.model.sheet(sheet)
        key = ("rings", sheet, category or self.category, self.threshold, ring_pixel_mm(s))
        if key not in self._cache:
            self._cache[key] = purity_rings(s, curve, key[-1])
        return self._cache[key]

    # ------------------------------------------------------------------ stimulation
    def stimulator(self, layer: str):
        """The prepared microstimulation experiment for a sheet (built once, from the cached responses)."""
        from topoviewer.pipeline import Stimulator

        if self.model is None:
            raise TopoviewerError("no model is loaded")
        name = self.model.sheet(layer).name
        if name not in self._stimulators:
            if self.model.next_sheet(name) is None:
                raise TopoviewerError(
                    f"{name} is the last sheet: nothing downstream to propagate to; click an earlier sheet"
                )
            kw = {}
            if self.analysis is not None and self.stimuli is not None:
                kw = dict(stimuli=self.stimuli, responses=self.analysis.responses)
            category = self.category if self.analysis is not None else "faces"
            prepared = self._cache.pop(_stimulator_key(name, category, self.t_threshold, self.fwhm_mm,
                                                       self.voxel_mm), None) if kw else None
            self._stimulators[name] = prepared or Stimulator(
                self.model, name, category=category, fwhm_mm=self.fwhm_mm, voxel_mm=self.voxel_mm,
                threshold=self.t_threshold, **kw)
        return self._stimulators[name]

    def forget_stimulators(self):
        """Drop the prepared stimulation experiments (their baselines): the model's forward pass changed."""
        self._stimulators.clear()
        self._cache = {k: v for k, v in self._cache.items() if k[0] != "stimulator"}

    def has_stimulator(self, layer: str) -> bool:
        return layer in self._stimulators

    def stimulate(self, layer: str, center_mm, radius_mm: float | None = None, site: str = "click",
                  log: bool = True):
        """Stimulate a disc of ``layer`` and propagate; emits ``stimulated`` and (``log``) logs the result.

        Returns the :class:`~topoviewer.pipeline.StimulationResult`.
        """
        stim = self.stimulator(layer)
        radius = self.stim_radius_mm if radius_mm is None else float(radius_mm)
        result = stim.stimulate(center_mm, radius_mm=radius, site=site)
        self.stimulation = result
        self.events.stimulated.emit(self, result)
        if log:
            self.log_result(result)
        return result

    def log_result(self, r, latency_ms: float | None = None):
        """Append a stimulation result to the log (emits ``log_changed``).

        ``latency_ms`` is the click → updated layers time when the GUI measured it; else the
        result's own compute time.
        """
        row = {
            "n": len(self.log) + 1,
            "time": time.strftime("%H:%M:%S"),
            "model": getattr(self.model, "name", ""),
            "layer": r.layer,
            "next_layer": r.next_layer,
            "x_mm": round(r.site_mm[0], 4),
            "y_mm": round(r.site_mm[1], 4),
            "radius_mm": r.radius_mm,
            "stimulated_units": r.stimulated_units,
            "next_patch_units": len(r.next_patch_units),
            "next_patch_mean": r.next_patch_mean,
            "baseline": r.baseline,
            "next_patch_delta": r.next_patch_delta,
            "ratio": r.next_patch_mean / r.baseline if r.baseline > 0 else float("nan"),
            "next_mean": r.next_mean,
            "site": r.site,
            "clipped": r.clipped,
            "latency_ms": r.compute_ms if latency_ms is None else latency_ms,
        }
        self.log.append(row)
        self.events.log_changed.emit(self)

    def clear_log(self):
        self.log.clear()
        self.events.log_changed.emit(self)

    def log_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=LOG_FIELDS, lineterminator="\n")
        w.writeheader()
        for row in self.log:
            w.writerow({k: row.get(k, "") for k in LOG_FIELDS})
        return buf.getvalue()

    def save_log(self, path) -> Path:
        from topoviewer.io import atomic_write

        if not self.log:
            raise TopoviewerError("the stimulation log is empty: stimulate first (click a sheet with the tool on)")
        text = self.log_csv()
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    # ------------------------------------------------------------------ maps as data
    def unit_table(self) -> dict:
        """Per-sheet arrays of everything known per unit (positions, d′ per category, early visual maps,
        activations, stimulation)."""
        if self.model is None:
            raise TopoviewerError("no model is loaded")
        out = {}
        for s in self.model.sheets:
            cols = {"x_mm": s.positions[:, 0], "y_mm": s.positions[:, 1]}
            if self.analysis is not None and s.name in self.analysis.sheets:
                for c, v in self.analysis.sheets[s.name].dprime.items():
                    cols[f"dprime_{c}"] = np.asarray(v)
            if self.early is not None and s.name in self.early.sheets:
                cols.update(self.early.sheets[s.name].early.unit_maps())
            if self.activations is not None and s.name in self.activations.mean:
                cols["activation_mean"] = self.activations.mean[s.name]
                if s.name in self.activations.contrast:
                    cols[f"contrast_dprime_{self.activations.contrast_category}"] = self.activations.contrast[s.name]
            if self.stimulation is not None:
                if s.name == self.stimulation.layer:
                    cols["stimulation"] = self.stimulation.activity
                elif s.name == self.stimulation.next_layer:
                    cols["propagated"] = self.stimulation.propagated
            out[s.name] = cols
        return out

    def save_maps(self, path) -> Path:
        """Write every map: ``.npz`` (per-unit arrays, voxel t maps, purity curves) or ``.csv`` (one row per unit)."""
        from topoviewer.io import atomic_write

        path = Path(path)
        table = self.unit_table()
        suffix = path.suffix.lower()
        if suffix == ".npz":
            arrays = {}
            for sheet, cols in table.items():
                for k, v in cols.items():
                    arrays[f"{sheet}/{k}"] = np.asarray(v)
                if self.voxel_t.get(sheet):
                    for c, t in self.voxel_t[sheet].items():
                        arrays[f"{sheet}/voxel_t_{c}"] = np.asarray(t)
                    arrays[f"{sheet}/voxel_mm"] = np.asarray(self.voxel_mm)
                    arrays[f"{sheet}/fwhm_mm"] = np.asarray(self.fwhm_mm)
                if self.analysis is not None:
                    curve = self.purity(sheet)
                    if curve is not None:
                        arrays[f"{sheet}/purity_{self.category}_distance_mm"] = curve.distance_mm
                        arrays[f"{sheet}/purity_{self.category}"] = curve.purity
                        arrays[f"{sheet}/purity_{self.category}_centre_mm"] = np.asarray(curve.centre)

            def write(tmp):
                with open(tmp, "wb") as fh:
                    np.savez_compressed(fh, **arrays)

            return atomic_write(path, write)
        if suffix == ".csv":
            keys = []
            for cols in table.values():
                keys += [k for k in cols if k not in keys]
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["sheet", "unit"] + keys)
            for sheet, cols in table.items():
                n = len(cols["x_mm"])
                for i in range(n):
                    w.writerow([sheet, i] + [_fmt(cols[k][i]) if k in cols else "" for k in keys])
            text = buf.getvalue()
            return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        raise TopoviewerError(f"cannot save maps to {path.name!r}: expected a .npz or .csv file name")

    def patch_table(self) -> list:
        """Does each category's patch see the pictures? Rows of :func:`topoviewer.analysis.photos.patch_table`
        at the current FWHM and t threshold ([] without pictures or analysis)."""
        from topoviewer.analysis.photos import patch_table

        act = self.activations
        if act is None or self.analysis is None or not act.responses:
            return []
        return patch_table(self.model, self.analysis, act.responses, act.names, voxel_t=self.voxel_t,
                           t_threshold=self.t_threshold, voxel_mm=self.voxel_mm)

    def save_patch_table(self, path) -> Path:
        """Write :meth:`patch_table` as CSV (atomically)."""
        from topoviewer.analysis.photos import patch_table_csv
        from topoviewer.io import atomic_write

        rows = self.patch_table()
        if not rows:
            raise TopoviewerError("no patch table yet: run a picture or a folder through the model first")
        if Path(path).suffix.lower() != ".csv":
            raise TopoviewerError(f"the patch table is a .csv file, got {Path(path).name!r}")
        text = patch_table_csv(rows)
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))

    def workspace(self):
        """The session as a :class:`topoviewer.workspace.Workspace` (model, settings, pictures, log)."""
        from topoviewer.workspace import Workspace, model_hash

        if self.model is None:
            raise TopoviewerError("no model is loaded: a workspace starts with a model")
        if self.training_step is not None:
            raise TopoviewerError("training is running: stop it (the model is then saved) before saving a workspace")
        act = self.activations
        return Workspace(
            model=self.source, model_sha256=model_hash(self.source), category=self.category,
            fwhm_mm=self.fwhm_mm, voxel_mm=self.voxel_mm, dprime_threshold=self.threshold,
            t_threshold=self.t_threshold, stim_radius_mm=self.stim_radius_mm,
            images=None if act is None else act.images, images_name="" if act is None else act.name,
            labels=None if act is None else act.labels, categories=[] if act is None else list(act.categories),
            log=[dict(row) for row in self.log])

    def apply_settings(self, ws):
        """Take a workspace's map settings and log; with an analysis on screen the maps follow at once.

        The voxel t maps are not recomputed here: a new FWHM needs the controller's worker.
        """
        if self.analysis is not None and ws.category not in self.analysis.categories:
            raise TopoviewerError(f"the workspace's category {ws.category!r} is not among the analysis's "
                                  f"{', '.join(self.analysis.categories)}")
        self.set_stim_radius(ws.stim_radius_mm)
        self.category = ws.category
        self.fwhm_mm, self.voxel_mm = ws.fwhm_mm, ws.voxel_mm
        self.threshold, self.t_threshold = ws.dprime_threshold, ws.t_threshold
        self.log = [dict(row) for row in ws.log]
        self._stimulators.clear()
        self.events.log_changed.emit(self)
        if self.analysis is not None:
            self.events.category_changed.emit(self)

    def analysis_for_figure(self):
        """The analysis with the voxel t maps at the current FWHM (for :func:`topoviewer.figures.map_figure`)."""
        import dataclasses

        if self.analysis is None:
            raise TopoviewerError("no analysis yet: load a model and wait for its maps")
        sheets = {
            name: dataclasses.replace(m, voxel_t=self.voxel_t.get(name, m.voxel_t))
            for name, m in self.analysis.sheets.items()
        }
        return dataclasses.replace(self.analysis, sheets=sheets)


def prepare_maps(model, analysis, stimuli=None, *, category="faces", threshold=defaults.DPRIME_THRESHOLD,
                 t_threshold=defaults.VOXEL_T_THRESHOLD, fwhm_mm=defaults.FWHM_MM, voxel_mm=defaults.VOXEL_MM) -> dict:
    """What a :class:`TopoState` derives from ``analysis`` at these settings, computed ahead.

    The patches, purity curves and rings of every sheet and, with ``stimuli`` (those of the
    analysis), the microstimulation experiment of the first sheet. Computation only, so a worker
    calls it and the GUI thread only shows the result: hand it to :meth:`TopoState.set_model` /
    :meth:`TopoState.set_analysis` as ``prepared`` (entries for other settings are never used).
    """
    from topoviewer.analysis import purity_rings
    from topoviewer.pipeline import Stimulator

    out = {}
    for s in model.sheets:
        maps = analysis.sheets.get(s.name)
        if maps is None or category not in maps.voxel_t:
            continue
        out[("patch", s.name, category, t_threshold)] = _patch_labels(maps.voxel_t[category], t_threshold)
        try:
            curve = maps.purity(category, threshold)  # cached in the analysis
        except TopoviewerError:
            continue
        px = ring_pixel_mm(s)
        out[("rings", s.name, category, threshold, px)] = purity_rings(s, curve, px)
    first = model.sheets[0].name
    if stimuli is not None and len(model.sheets) > 1 and category in stimuli.categories:
        out[_stimulator_key(first, category, t_threshold, fwhm_mm, voxel_mm)] = Stimulator(
            model, first, stimuli, category=category, fwhm_mm=fwhm_mm, voxel_mm=voxel_mm, threshold=t_threshold,
            responses=analysis.responses)
    return out


def _stimulator_key(name, category, t_threshold, fwhm_mm, voxel_mm):
    return ("stimulator", name, category, float(t_threshold), float(fwhm_mm), float(voxel_mm))


def ring_pixel_mm(sheet) -> float:
    """Pixel size of a sheet's purity-ring raster (finer than the map rasters: thin rings)."""
    return sheet.default_pixel_mm(200)


def _patch_labels(t_map, threshold) -> np.ndarray:
    from topoviewer.analysis import find_patches

    labels, _ = find_patches(t_map, threshold=threshold)
    return labels.astype(np.int32)


def _fmt(v) -> str:
    v = float(v)
    return "" if not np.isfinite(v) else f"{v:.6g}"
