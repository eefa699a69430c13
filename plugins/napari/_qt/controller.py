"""One controller per viewer: the state, the layer book, the stimulate tool and the thread workers.

Every slow step (loading, forward passes, analysis, training) runs as a generator in a
``napari.qt.threading`` worker; results reach the :class:`TopoState` in the worker's
``returned``/``yielded`` callbacks, i.e. on the GUI thread. User mistakes
(:class:`TopoviewerError`) become one error notification and the viewer keeps working.
"""

from __future__ import annotations

import gc
import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topoviewer.errors import TopoviewerError

from ..layers import KEY, LayerBook
from psygnal import SignalGroup

from ..state import Activations, TopoState, signal
from ..tools import StimulateTool

#: Yielded by a ``model_pass`` job that needs the session model no more (see ``Controller._start``).
MODEL_DONE = ("model done",)

#: Keyboard shortcuts (napari key names) → controller methods; napari binds neither by default.
SHORTCUTS = {"Shift-S": "toggle_stimulate_tool", "Shift-X": "clear_stimulation"}

__all__ = ["Controller", "controller_for", "notify_error", "JobError"]

_CONTROLLERS: "weakref.WeakValueDictionary[int, Controller]" = weakref.WeakValueDictionary()


def _real(viewer):
    """The viewer behind napari's public-only proxy (plugin widgets receive a proxy)."""
    return getattr(viewer, "__wrapped__", viewer)


def controller_for(viewer, create: bool = True) -> "Controller | None":
    """The controller of ``viewer`` (created on first use)."""
    viewer = _real(viewer)
    ctrl = _CONTROLLERS.get(id(viewer))
    if ctrl is not None and ctrl.viewer is viewer and not ctrl.closed:
        return ctrl
    if not create:
        return None
    ctrl = Controller(viewer)
    _CONTROLLERS[id(viewer)] = ctrl
    return ctrl


def notify_error(message: str):
    from napari.utils.notifications import show_error

    show_error(str(message))


def notify_info(message: str):
    from napari.utils.notifications import show_info

    show_info(str(message))


@dataclass
class JobError:
    """A user error raised inside a worker, handed back as a value (shown as one clean notification)."""

    message: str


def _guarded(gen):
    """Run a job generator; a TopoviewerError ends it with a :class:`JobError` instead of a traceback."""
    try:
        return (yield from gen)
    except TopoviewerError as exc:
        return JobError(str(exc))


class ControllerEvents(SignalGroup):
    """What the controller announces besides the state's events."""

    job_done = signal(str, bool)  # (name, ok) a background job ended
    lesion_changed = signal(object)  # ({sheet: bool mask} or None) units silenced on the model, or intact again
    neurons_matched = signal(object, object, object, object)  # (result, responses, neural, stimuli) a match's


class Controller:
    """Glue between a viewer and a :class:`TopoState`: runs jobs, owns the tool and the book."""

    def __init__(self, viewer):
        self.viewer = viewer
        self.state = TopoState()
        self.book = LayerBook(viewer, self.state)
        self.book.controller = self  # the viewer's callbacks keep the controller alive, nothing global does
        self.book.defer = _next_turn
        self.tool = StimulateTool(viewer, self.book, self.request_stimulation)
        self.device = "cpu"
        self.closed = False
        self.jobs: dict = {}  # name → worker
        self.docks: dict = {}  # class name → dock widget (the latest of each kind)
        self.events = ControllerEvents()
        self.progress: dict = {}  # task → napari progress bar (the activity dock)
        self._busy: dict = {}  # task → (done, total, text) not shown yet
        self._busy_scheduled = False
        self.state.events.busy.connect(self._on_busy)
        self.first_picture_at: float | None = None
        self.last_latency: dict = {}
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        self._queued_images = None
        self._pending_click = None  # (sheet, xy, click time): the latest click not computed yet
        self._lesion = None  # (model, ExitStack, {sheet: mask}): units silenced on the current model
        # Held by a job's forward passes on the session model (taken in its worker, given back on the GUI
        # thread once its result is in); a lesion is applied or restored only while no job holds it.
        self._model_lock = threading.Lock()
        self._model_ops: list = []  # GUI-thread changes of the model waiting for the lock, in order
        self._matches = None  # (model, workspace record) of the last neurons matched (see match_neurons)
        self.state.events.model_changed.connect(self._drop_lesion)
        self.state.events.model_changed.connect(self._drop_matches)
        self.state.events.analysis_changed.connect(self._freeze_heap)
        for key, action in SHORTCUTS.items():
            viewer.bind_key(key, getattr(self, action), overwrite=True)
        from .drop import install

        self.drops = install(viewer)  # the plugin's drops open without napari's reader dialog

    def _freeze_heap(self, state):
        """Once the first maps are in: every object alive (napari, Qt, torch, the model) goes to Python's
        permanent generation (``gc.freeze``), so later full collections scan only newer objects. A full
        collection of that heap held the interpreter, hence the event loop, for 0.4–0.65 s during figure
        exports and training (measured); with the heap frozen, the longest pause was 32 ms. :meth:`close`
        unfreezes it."""
        state.events.analysis_changed.disconnect(self._freeze_heap)
        gc.freeze()

    # ------------------------------------------------------------------ shortcuts
    def toggle_stimulate_tool(self, viewer=None):
        """Shift-S: switch the Stimulate tool on or off."""
        self.tool.enabled = not self.tool.enabled

    def clear_stimulation(self, viewer=None):
        """Shift-X: hide the stimulation layers (the log is kept)."""
        self.book.clear_stimulation()

    # ------------------------------------------------------------------ lifecycle
    def close(self):
        if self.closed:
            return
        self.closed = True
        gc.unfreeze()  # what _freeze_heap kept out of the collections can be collected again
        for w in list(self.jobs.values()):
            w.quit()
        self.tool.enabled = False
        for key in SHORTCUTS:
            self.viewer.bind_key(key, None, overwrite=True)
        if self.drops is not None:
            self.drops.remove()
        self.book.close()
        self.state.events.disconnect()
        self.events.disconnect()
        for bar in self.progress.values():
            bar.close()
        self.progress.clear()
        try:
            self.viewer.layers.events.inserted.disconnect(self._on_layer_inserted)
        except (TypeError, ValueError, RuntimeError):
            pass

    @property
    def busy(self) -> bool:
        return bool(self.jobs)

    def wait(self, timeout_s: float = 60.0, names=None):
        """Process events until the named jobs (default: all, the maps they drew and the lesion changes
        waiting for them) are done (scripts, tests)."""
        from qtpy.QtWidgets import QApplication

        end = time.monotonic() + timeout_s
        while (any(n in self.jobs for n in (names or list(self.jobs)))
               or (names is None and (self.book.pending or self._model_ops))):
            if time.monotonic() > end:
                raise TimeoutError(f"still running after {timeout_s} s: jobs {list(self.jobs)}, "
                                   f"{self.book.pending} analyses' maps being drawn")
            QApplication.processEvents()
            time.sleep(0.005)
        QApplication.processEvents()

    def _on_busy(self, task, done, total, text):
        """Progress of background work → napari's own progress bars (activity dock), one per task.

        Shown on the next event-loop turn, coalesced: a napari bar processes Qt events whenever it
        changes, which inside a worker's callback would run the worker's later yields first.
        """
        self._busy[task] = (done, total, text)
        if not self._busy_scheduled:
            self._busy_scheduled = True
            _next_turn(self._show_progress)

    def _show_progress(self):
        from napari.utils import progress

        try:
            while self._busy and not self.closed:
                task = next(iter(self._busy))
                done, total, text = self._busy.pop(task)
                bar = self.progress.get(task)
                if total <= 0:
                    if bar is not None:
                        del self.progress[task]
                        bar.close()
                    continue
                if bar is None:
                    bar = self.progress[task] = progress(total=total, desc=text)
                elif bar.total != total:
                    bar.total = total
                bar.set_description(text)
                bar.n = done
                bar.update(0)  # emits napari's value event
        finally:
            self._busy_scheduled = False

    def _start(self, name: str, gen, on_done, on_yield=None, replace=True, model_pass=False):
        """Start a generator job in a thread worker; ``on_done(result)`` runs on the GUI thread.

        ``model_pass``: the job runs forward passes on the session model. It holds the model lock
        from its start (after any lesion change waiting for it) until its result has been handled,
        or until it yields :data:`MODEL_DONE`, so a lesion applied or restored meanwhile
        (:meth:`apply_lesion`) waits for it and never changes the model in the middle of a pass.
        """
        from napari.qt.threading import create_worker

        old = self.jobs.get(name)
        if old is not None:
            if not replace:
                raise TopoviewerError(f"{name} is already running; wait for it or stop it first")
            old.quit()
            self.jobs.pop(name, None)
        held = []  # [True] while this job holds the model lock

        def give_back():
            if held:
                held.clear()
                self._model_lock.release()
                self._run_model_ops()

        def body():
            if model_pass and not self._take_model(held):
                return None  # the viewer closed while the job waited
            return (yield from _guarded(gen))

        worker = create_worker(body, _start_thread=False)

        def finished():
            give_back()  # here, after `returned`: the result is in before a lesion may change the model
            if self.jobs.get(name) is worker:
                self.jobs.pop(name, None)
                self.state.report(name, 0, 0, "")

        def returned(result):
            if self.closed or self.jobs.get(name) is not worker:
                return
            self.jobs.pop(name, None)
            self.state.report(name, 0, 0, "")
            if isinstance(result, JobError):
                notify_error(result.message)
                self.events.job_done.emit(name, False)
                return
            try:
                on_done(result)
            except TopoviewerError as exc:
                notify_error(str(exc))
                self.events.job_done.emit(name, False)
                return
            self.events.job_done.emit(name, True)

        def errored(exc):
            self.jobs.pop(name, None)
            self.state.report(name, 0, 0, "")
            self.events.job_done.emit(name, False)

        def yielded(value):
            if value is MODEL_DONE:
                give_back()
            elif on_yield is not None:
                on_yield(value)

        worker.yielded.connect(yielded)
        worker.returned.connect(returned)
        worker.errored.connect(errored)
        worker.finished.connect(finished)
        self.jobs[name] = worker
        worker.start()
        return worker

    def _take_model(self, held) -> bool:
        """In a worker: wait for the model lock, letting the lesion changes queued before go first;
        False (not taken) once the controller is closed, so no worker waits forever at exit."""
        while not self.closed:
            if not self._model_lock.acquire(timeout=0.1):
                continue
            if not self._model_ops:
                held.append(True)
                return True
            self._model_lock.release()
            time.sleep(0.02)
        return False

    def _when_model_free(self, op):
        """Run ``op()`` on the GUI thread once no job's forward pass holds the model (now when none
        does); queued changes run in order."""
        self._model_ops.append(op)
        self._run_model_ops()

    def _run_model_ops(self):
        if not self._model_ops or self.closed:
            return
        if not self._model_lock.acquire(blocking=False):
            _next_turn(self._run_model_ops, 20)  # a job's pass is in flight: its `finished` or this retry
            return
        try:
            while self._model_ops:
                self._model_ops.pop(0)()
        finally:
            self._model_lock.release()

    # ------------------------------------------------------------------ models
    def open_model(self, source, *, sync_load: bool = False, stimuli=None, name: str | None = None):
        """Open a model (``"sample"``, a path or a TopoModel) and analyse it in the background.

        With ``sync_load`` the file is read on the calling thread (fast for small models; the
        sample command needs the sheets at once) and only the analysis runs in a worker.
        """
        from topoviewer.io import load

        if sync_load and isinstance(source, (str, Path)):
            try:
                model = load(str(source), device=self.device)
            except TopoviewerError as exc:
                notify_error(str(exc))
                return None
            self._set_model(model, str(source))
            return self.analyse(stimuli)
        device = self.device

        def job():
            if isinstance(source, (str, Path)):
                yield ("load", 0, 1)
                model = load(str(source), device=device)
                yield ("load", 1, 1)
            else:
                model = source.to(device)
            warm_rasters(model.sheets)
            return model

        def done(model):
            self._set_model(model, name or (str(source) if isinstance(source, (str, Path)) else model.name))
            self.analyse(stimuli)

        return self._start("load", job(), done, self._on_progress("load"))

    def _set_model(self, model, source):
        self.state.set_model(model, source)

    def set_device(self, device: str):
        from topoviewer.model import resolve_device

        try:
            device = resolve_device(device)
        except TopoviewerError as exc:
            notify_error(str(exc))
            return
        self.device = device
        if self.state.model is not None:
            self.state.model.to(device)

    def require_model(self):
        """The current model; None after one notification saying why there is none (still
        loading: a load job runs or the start's preview maps are shown; else none opened)."""
        model = self.state.model
        if model is None:
            if "load" in self.jobs or self.book.layout is not None:
                notify_error("the model is still loading (the maps are a preview): try again in a moment")
            else:
                notify_error("no model is loaded: open a model file or the default model first")
        return model

    def analyse(self, stimuli=None):
        """Run the §3–5 analysis of the current model on ``stimuli`` (default: the localizer)."""
        from topoviewer.pipeline import default_stimuli, iter_analysis

        model = self.require_model()
        if model is None:
            return None
        fwhm, voxel = self.state.fwhm_mm, self.state.voxel_mm

        def job():
            yield ("stimuli", 0, 1)
            stim = default_stimuli(model) if stimuli is None else stimuli
            result = yield from iter_analysis(model, stim, fwhm_mm=fwhm, voxel_mm=voxel)
            yield ("patches and stimulation", 0, 1)
            return result, stim, self.state.prepare(model, result, stim)

        def done(value):
            analysis, stim, prepared = value
            if self.state.model is not model:
                return  # a newer model replaced it meanwhile
            self.state.set_analysis(analysis, stim, prepared=prepared)
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, self.prepare_stimulation)
            if self._queued_images is not None:  # pictures dropped before any model was open
                queued, self._queued_images = self._queued_images, None
                self.run_images(*queued)
            if self.first_picture_at is None:
                self.first_picture_at = time.time()

        return self._start("analysis", job(), done, self._on_progress("analysis"), model_pass=True)

    def analyse_gratings(self, fov_deg=None):
        """Early visual maps of the current model on sine gratings (orientation, OSI, SF, colour,
        pinwheels), in a worker; the category analysis stays."""
        from topoviewer.pipeline import iter_analysis, model_gratings

        model = self.require_model()
        if model is None:
            return None

        def job():
            yield ("gratings", 0, 1)
            return (yield from iter_analysis(model, model_gratings(model, fov_deg=fov_deg)))

        def done(analysis):
            if self.state.model is model:
                self.state.set_early(analysis)

        return self._start("gratings", job(), done, self._on_progress("gratings"), model_pass=True)

    def run_null(self, n_shuffles: int = 100, on_done=None):
        """The spatial null of every sheet (``n_shuffles`` position shuffles) in a worker; cached in the state."""
        st = self.state
        if st.analysis is None:
            notify_error("no analysis yet: load a model and wait for its maps")
            return None
        names = list(st.analysis.sheets)

        def job():
            for i, name in enumerate(names):
                yield (f"spatial null, {n_shuffles} shuffles", i, len(names))
                st.compute_null(name, n_shuffles)
            return names

        return self._start("null", job(), on_done or (lambda _: None), self._on_progress("null"))

    def run_suite(self, suite: str, on_done=None, **options):
        """Run an analysis suite of the current model (:func:`topoviewer.suites.run_suite` with
        ``options``) in a worker; ``on_done(result)`` runs on the GUI thread if that model is still the
        current one. Returns the worker.

        Every suite runs on a copy of the model (as it is then, lesion included), made in the
        worker while it holds the model: the lesion suite silences units of the model it runs on,
        and a lesion applied or restored during a suite does not reach the suite's forward passes.
        """
        from copy import deepcopy

        from topoviewer.suites import run_suite

        model = self.require_model()
        if model is None:
            return None

        def job():
            yield (f"{suite} suite", 0, 1)
            copy = deepcopy(model)
            yield MODEL_DONE  # the suite needs only its copy from here on
            return run_suite(suite, copy, **options)

        def done(result):
            if on_done is not None and self.state.model is model:  # not for a model replaced meanwhile
                on_done(result)

        return self._start("suite", job(), done, self._on_progress("suite"), model_pass=True)

    # ------------------------------------------------------------------ lesions and neurons
    @property
    def lesion(self) -> dict | None:
        """``{sheet: bool mask}`` of the units silenced on the current model (None: intact)."""
        return None if self._lesion is None else self._lesion[2]

    def apply_lesion(self, units: dict):
        """Silence ``units`` (``{sheet: bool mask}``) of the current model until :meth:`restore_lesion`.

        Every later forward pass sees the lesion (:meth:`topoviewer.model.TopoModel.lesion`): the
        activation maps of the input pictures are computed again, stimulation propagates through
        the lesioned model, and the suites run on it; the analysis maps stay the intact model's.
        The silenced units are marked (1) on the units layers. The model changes once no job's
        forward pass holds it (at once when none does), never in the middle of a pass.
        """
        model = self.state.model
        self._when_model_free(lambda: self._apply_lesion(model, units))

    def _apply_lesion(self, model, units):
        from contextlib import ExitStack

        if model is not self.state.model:
            return  # replaced before its turn came
        self._restore_lesion()
        stack = ExitStack()
        for sheet, mask in units.items():
            stack.enter_context(model.lesion(sheet, mask))
        self._lesion = (model, stack, units)
        self.events.lesion_changed.emit(units)
        self._lesion_changed()
        self.book.colour_units({k: np.asarray(v, dtype=float) for k, v in units.items()}, "lesioned region",
                               show=True)

    def restore_lesion(self) -> bool:
        """The intact model again (after :meth:`apply_lesion`), once no job's forward pass holds it;
        False if nothing was lesioned or about to be."""
        held = self._lesion is not None or bool(self._model_ops)
        if held:
            self._when_model_free(self._restore_lesion)
        return held

    def _restore_lesion(self):
        if self._lesion is None:
            return
        model, stack, _ = self._lesion
        self._lesion = None
        stack.close()
        self.events.lesion_changed.emit(None)
        if model is self.state.model:
            self._lesion_changed()
            self.book.reset_units()

    def _drop_lesion(self, state):
        if self._lesion is not None and self._lesion[0] is not state.model:
            self._when_model_free(self._restore_lesion)  # a new model: the old one is given back intact

    def _lesion_changed(self):
        """What depends on the model's forward passes, computed again: activations and stimulation."""
        st = self.state
        st.forget_stimulators()
        self.book.clear_stimulation()
        act = st.activations
        if act is not None and act.images is not None:
            self.run_images(act.images, act.name, act.labels, act.categories or None, act.names)

    def match_neurons(self, neural, folder, n_permutations: int = 100, on_done=None):
        """Match recorded neurons to the current model's units in a worker, as ``topoviewer match``:
        `neural` (.npz/.csv, rows = the images of `folder` in sorted order) against the model's
        responses to the images of `folder` (``DIR/<category>/*.png``).

        When it is done, :attr:`ControllerEvents.neurons_matched` announces ``(result, responses,
        neural, stimuli)`` (:func:`topoviewer.suites.match_suite`'s result and what it matched) and
        ``on_done`` gets the same on the GUI thread; the match (the file's path and SHA-256, the
        folder, the result) goes into a saved workspace. Returns the worker.
        """
        from topoviewer.io import file_sha256
        from topoviewer.stimuli import load_folder
        from topoviewer.suites import load_neural, match_suite

        model = self.require_model()
        if model is None:
            return None
        record = {"neural": str(Path(neural).expanduser().resolve()), "stimuli": str(Path(folder).expanduser().resolve()),
                  "permutations": int(n_permutations)}

        def job():
            yield ("stimuli", 0, 3)
            stimuli = load_folder(folder, size=max(32, model.input_size))
            data = load_neural(neural, len(stimuli))
            record["neural_sha256"] = file_sha256(neural)
            yield ("responses", 1, 3)
            responses = model.responses(stimuli.images)
            yield MODEL_DONE
            yield (f"{n_permutations} permutations", 2, 3)
            result = match_suite(model, stimuli, data, n_permutations=n_permutations, responses=responses)
            return result, responses, data, stimuli

        def done(value):
            if self.state.model is not model:
                return
            self._matches = (model, {**record, "result": value[0]})
            self.events.neurons_matched.emit(*value)
            if on_done is not None:
                on_done(*value)

        return self._start("match", job(), done, self._on_progress("match"), model_pass=True)

    def _drop_matches(self, state):
        if self._matches is not None and self._matches[0] is not state.model:
            self._matches = None

    def _on_progress(self, task):
        def on_yield(value):
            if isinstance(value, tuple) and len(value) == 3:
                stage, done, total = value
                self.state.report(task, int(done), int(total), f"{task}: {stage}")
        return on_yield

    def analyse_folder(self, folder):
        """Analyse the current model on a stimulus folder ``DIR/<category>/*.png``."""
        from topoviewer.stimuli import load_folder

        model = self.require_model()
        if model is None:
            return None
        try:
            stim = load_folder(folder, size=max(32, model.input_size))
        except TopoviewerError as exc:
            notify_error(str(exc))
            return None
        return self.analyse(stim)

    def set_fwhm(self, fwhm_mm: float):
        """Recompute the voxel t maps at another FWHM (from the cached responses, in a worker)."""
        from topoviewer.analysis import voxel_t_maps

        st = self.state
        if st.analysis is None:
            st.fwhm_mm = float(fwhm_mm)
            return None
        analysis, model, voxel = st.analysis, st.model, st.voxel_mm

        def job():
            out = {}
            names = list(analysis.responses)
            for i, name in enumerate(names):
                out[name] = voxel_t_maps(model.sheet(name), analysis.responses[name], analysis.labels,
                                         analysis.categories, fwhm_mm=fwhm_mm, voxel_mm=voxel)
                yield ("voxel t", i + 1, len(names))
            return out

        def done(voxel_t):
            if st.analysis is analysis:
                st.set_voxel_t(fwhm_mm, voxel_t)

        return self._start("fwhm", job(), done, self._on_progress("fwhm"))

    # ------------------------------------------------------------------ user images
    def run_images(self, images, name: str, labels=None, categories=None, names=None):
        """Forward pass on one image (H, W[, 3]) or a stack (n, H, W[, 3]); a labelled stack also gets a contrast.

        ``names`` (one per picture) label the rows of the patch table; by default the
        picture's name, or "<name> #i" (a labelled stack: "<category> #i").
        """
        from topoviewer.analysis import dprime_maps

        st = self.state
        model = st.model
        if model is None:
            self._queued_images = (images, name, labels, categories)
            from napari.utils.notifications import show_warning

            show_warning("no model is loaded yet: the pictures will run through the next model opened")
            return None
        arr = np.asarray(images, dtype=np.float32)
        single = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 3 and labels is None and arr.shape[0] > 3)
        batch = arr[None] if single else arr
        category = st.category
        if names is None or len(names) != len(batch):
            names = [name] if single else [
                f"{categories[int(lab)]} #{i + 1}" if labels is not None and categories else f"{name} #{i + 1}"
                for i, lab in enumerate(labels if labels is not None else range(len(batch)))]

        def job():
            responses = yield from model.iter_responses(batch)
            seen = model.input_pixels(batch[:1])[0].mean(dim=0).cpu().numpy()  # grey, cropped, resized
            mean = {k: v.mean(axis=0) for k, v in responses.items()}
            contrast, cat = {}, None
            if labels is not None and categories is not None and len(set(np.asarray(labels).tolist())) > 1:
                cat = category if category in categories else categories[0]
                for k, v in responses.items():
                    contrast[k] = dprime_maps(v, labels, categories)[cat]
            return Activations(name, len(batch), mean, contrast, cat, list(categories or []), images=arr,
                               labels=None if labels is None else np.asarray(labels), responses=responses,
                               names=list(names), network_input=seen)

        def done(act):
            if st.model is model:
                st.set_activations(act)

        def on_yield(value):
            done_, total = value
            st.report("images", int(done_), int(total), f"forward pass: {name}")

        return self._start("images", job(), done, on_yield, model_pass=True)

    def _on_layer_inserted(self, event):
        """A stimulus picture opened by the plugin's reader → run it through the network."""
        layer = event.value
        meta = layer.metadata.get("topoviewer_stimulus")
        if not meta:
            return
        from topoviewer.stimuli import load_image

        try:
            data = np.asarray(layer.data)
            if meta.get("stack"):
                images = data
            else:
                images = load_image(data)
            layer.metadata[KEY] = "input/image"
            old = [lyr for lyr in self.viewer.layers if lyr is not layer and lyr.metadata.get(KEY) == "input/image"]
            for lyr in old:  # one input picture at a time
                self.viewer.layers.remove(lyr)
            self.run_images(images, meta.get("name", layer.name), meta.get("labels"), meta.get("categories"),
                            meta.get("names"))
        except TopoviewerError as exc:
            notify_error(str(exc))

    def run_layer(self, layer):
        """Forward pass on an image layer chosen in the dock (RGB, grey, or a grey stack)."""
        from topoviewer.stimuli import load_image

        data = np.asarray(layer.data)
        try:
            if layer.rgb:
                images = load_image(data[..., :3] if data.ndim == 3 else data)
                if data.ndim == 4:
                    images = np.stack([load_image(d[..., :3]) for d in data])
            elif data.ndim == 2:
                images = load_image(data)
            elif data.ndim == 3:
                images = np.stack([load_image(d) for d in data])
            else:
                raise TopoviewerError(
                    f"layer {layer.name!r} has shape {data.shape}; expected (H, W), (H, W, 3) or (n, H, W)")
        except TopoviewerError as exc:
            notify_error(str(exc))
            return None
        meta = layer.metadata.get("topoviewer_stimulus") or {}
        return self.run_images(images, layer.name, meta.get("labels"), meta.get("categories"))

    # ------------------------------------------------------------------ stimulation
    def request_stimulation(self, sheet: str, xy):
        """A click of the Stimulate tool: stimulated on the next event-loop turn.

        Clicks coalesce: one arriving before that turn replaces the pending one, so a burst of
        clicks computes (and logs) only the latest and the GUI never queues up stimulations.
        """
        scheduled = self._pending_click is not None
        self._pending_click = (sheet, xy, time.perf_counter())
        if not scheduled:
            _next_turn(self._stimulate_pending)

    def _stimulate_pending(self):
        pending, self._pending_click = self._pending_click, None
        if pending is not None and not self.closed:
            sheet, xy, t_click = pending
            self.stimulate_at(sheet, xy, since=t_click)

    def stimulate_at(self, sheet: str, xy, site: str = "click", since: float | None = None):
        """Stimulate ``sheet`` at ``xy`` (sheet units); updates layers and the log. Returns the result or None.

        ``since``: ``time.perf_counter()`` of the click, for the logged latency (default: now).
        """
        t0 = time.perf_counter() if since is None else since
        try:
            result = self.state.stimulate(sheet, xy, site=site, log=False)
        except TopoviewerError as exc:
            notify_error(str(exc))
            return None
        ms = 1000.0 * (time.perf_counter() - t0)  # stimulation computed, layers and read-out updated
        self.last_latency = {"compute_ms": result.compute_ms, "click_to_layers_ms": ms}
        self.state.log_result(result, latency_ms=round(ms, 3))
        return result

    def prepare_stimulation(self):
        """Build the microstimulation experiment of the first sheet ahead of the first click."""
        st = self.state
        if self.closed or st.model is None or st.analysis is None or len(st.model.sheets) < 2:
            return
        try:
            stim = st.stimulator(st.model.sheets[0].name)
            if st.training_step is None:  # not while training: those maps are replaced every few seconds
                self.book.prepare_stimulation(stim.layer, stim.next_layer, stim.patch_mask[stim.next_layer])
        except TopoviewerError:
            pass

    def stimulate_inside_outside(self, layer: str, seed: int = 0):
        """Stimulate the patch centre and a random site outside every patch: two log rows, one click."""
        try:
            stim = self.state.stimulator(layer)
            inside = stim.site("inside")
            outside = stim.site("outside", rng=np.random.default_rng(seed + len(self.state.log)),
                                radius_mm=self.state.stim_radius_mm)
        except TopoviewerError as exc:
            notify_error(str(exc))
            return None
        a = self.stimulate_at(layer, inside, site="inside")
        b = self.stimulate_at(layer, outside, site="outside")
        if a is None or b is None:
            return None
        return a, b

    # ------------------------------------------------------------------ training
    def start_training(self, config, out, refresh_s: float = 3.0, probe_per_category: int = 12,
                       on_progress=None, on_finished=None):
        """Train in a worker; every ``refresh_s`` the maps of the model as it is now replace the shown maps.

        The maps come from an in-memory snapshot of the model (``Progress.snapshot``), whatever
        the checkpoint interval; the snapshot's light analysis on a small fixed probe set and its
        derived maps (:meth:`TopoState.prepare`) are computed in the worker, so the GUI thread only
        sets layer data. ``on_progress(Progress)`` runs for every step (GUI thread);
        ``on_finished(model, reason)`` once, with reason "done", "stopped" or "error".
        :meth:`stop_training` stops gracefully: the step in progress finishes and is saved
        (resumable, atomically) — also before the first regular checkpoint — and that model
        becomes the current model.
        """
        import threading

        from topoviewer.training import train

        out = Path(out)
        state = self.state
        tracker = {"checkpoint": None, "step": 0}
        self._stop_training = stop_event = threading.Event()

        def job():
            from topoviewer.pipeline import iter_analysis
            from topoviewer.stimuli import localizer

            gen = train(config, out, stop=stop_event)
            probe = None
            due = time.monotonic() + refresh_s
            while True:
                try:
                    p = next(gen)
                except StopIteration as stop:
                    return stop.value
                yield ("progress", p)
                if p.done or stop_event.is_set() or time.monotonic() < due:
                    continue  # the final (or stopped) model is opened and fully analysed by done()
                due = time.monotonic() + refresh_s  # the period runs from the snapshot, not from its maps
                model = p.snapshot()
                warm_rasters(model.sheets)
                if probe is None:
                    probe = localizer(size=max(32, model.input_size), per_category=probe_per_category, seed=99)
                analysis = yield from _silent(iter_analysis(model, probe, light=True))
                yield ("maps", p.step, model, analysis, probe, state.prepare(model, analysis))

        def on_yield(value):
            if value[0] == "progress":
                p = value[1]
                if p.checkpoint:
                    tracker["checkpoint"], tracker["step"] = p.checkpoint, p.step
                state.report("training", p.step, p.steps, f"training step {p.step}/{p.steps}")
                if on_progress:
                    on_progress(p)
            elif value[0] == "maps":
                _, step, model, analysis, probe, prepared = value
                state.set_model(model, source=str(out), stimuli=probe, analysis=analysis, training_step=step,
                                prepared=prepared)

        def done(model):
            state.report("training", 0, 0, "")
            self.open_model(model, name=str(out))
            if on_finished:
                on_finished(model, "stopped" if stop_event.is_set() else "done")

        worker = self._start("training", job(), done, on_yield, replace=False)

        def aborted():
            self.jobs.pop("training", None)
            state.report("training", 0, 0, "")
            ck = tracker["checkpoint"]
            if ck and Path(ck).exists():
                notify_info(f"training stopped; the last checkpoint (step {tracker['step']}) is kept in {ck}")
                self.open_model(ck)
            if on_finished:
                on_finished(None, "stopped")

        worker.aborted.connect(aborted)
        self.events.job_done.connect(self._training_error_hook(on_finished))
        return worker

    def _training_error_hook(self, on_finished):
        def hook(name, ok):
            if name == "training" and not ok and on_finished:
                self.events.job_done.disconnect(hook)
                on_finished(None, "error")
            elif name == "training":
                self.events.job_done.disconnect(hook)
        return hook

    def stop(self, name: str):
        w = self.jobs.get(name)
        if w is not None:
            w.quit()

    def stop_training(self):
        """Stop the training run gracefully: the current step is saved and opened (see start_training)."""
        w = self.jobs.get("training")
        if w is None:
            return
        self._stop_training.set()
        if getattr(w, "is_paused", False):
            w.resume()  # a paused run must reach the end of its step to save it

    # ------------------------------------------------------------------ workspace
    def save_workspace(self, path, force: bool = True):
        """Save the session (model path and hash, settings, pictures, log, the lesioned units, the
        matched neurons) as JSON + NPZ; returns the JSON path.

        ``force`` (the default here: the save dialog has already asked) replaces existing files.
        """
        from topoviewer.workspace import save_workspace

        ws = self.state.workspace()
        if self.lesion is not None:
            ws.lesion = {k: np.flatnonzero(m).tolist() for k, m in self.lesion.items()}
        if self._matches is not None and self._matches[0] is self.state.model:
            ws.matches = self._matches[1]
        return save_workspace(ws, path, force=force)

    def restore_workspace(self, path):
        """Open a saved session: its model, settings and log; its pictures run again, its lesion is
        applied again and its neurons matched again (:meth:`_restore_lesion_and_matches`).

        The session goes to the model on screen when its file is the workspace's (same SHA-256,
        wherever it lives). Otherwise the workspace's model file is opened, if unchanged: the
        settings and the log follow as soon as that model is in (so its maps are computed and
        drawn once, with them), the pictures once its maps are. A workspace whose model is neither
        open nor found unchanged is refused (TopoviewerError naming the file and hash expected)
        and nothing of it is applied.
        """
        from topoviewer.workspace import load_workspace, model_to_open

        ws = load_workspace(path)
        st = self.state
        ready = st.model is not None and st.analysis is not None and st.training_step is None
        if model_to_open(ws, st.source if ready else "") is None:
            refit = (ws.fwhm_mm, ws.voxel_mm) != (st.fwhm_mm, st.voxel_mm)
            st.apply_settings(ws)
            if refit:
                self.set_fwhm(ws.fwhm_mm)
            self._add_input_layer(ws)
            self._restore_lesion_and_matches(ws)
            return None
        opened = []

        def on_model(state):
            if state.source != ws.model:  # a model from before (or opened since): not the workspace's
                if "load" not in self.jobs:
                    forget()
                return
            st.events.model_changed.disconnect(on_model)
            opened.append(state.model)
            state.apply_settings(ws)  # no analysis yet: it is computed and drawn with these settings

        def on_analysis(state):
            if not opened:
                return
            forget()
            if state.model is not opened[0]:
                return
            if state.category != ws.category:
                notify_error(f"the workspace's category {ws.category!r} is not among the analysis's "
                             f"{', '.join(state.analysis.categories)}; showing {state.category}")
            self._add_input_layer(ws)
            self._restore_lesion_and_matches(ws)

        def failed(name, ok):
            if name in ("load", "analysis") and not ok:
                forget()  # the error is already shown

        def forget():
            st.events.model_changed.disconnect(on_model)
            st.events.analysis_changed.disconnect(on_analysis)
            self.events.job_done.disconnect(failed)

        st.events.model_changed.connect(on_model)
        st.events.analysis_changed.connect(on_analysis)
        self.events.job_done.connect(failed)
        return self.open_model(ws.model, name=ws.model)

    def _restore_lesion_and_matches(self, ws):
        """A workspace's lesion applied again (or the model made intact) and its neurons matched again
        (the same file, by SHA-256, gives the same, seeded, match; a changed or missing file: one
        notification and the saved matches as points, without their tuning curves)."""
        from topoviewer.workspace import check_neural

        model = self.state.model
        if not ws.lesion:
            self.restore_lesion()
        else:
            masks = {}
            for sheet, units in ws.lesion.items():
                try:
                    s = model.sheet(sheet)
                except TopoviewerError as exc:
                    notify_error(f"the workspace's lesion: {exc}")
                    return
                if units and max(units) >= s.n_units:
                    notify_error(f"the workspace's lesion of {sheet} names unit {max(units)}; the sheet has "
                                 f"{s.n_units} units")
                    return
                masks[s.name] = np.zeros(s.n_units, bool)
                masks[s.name][units] = True
            self.apply_lesion(masks)
        if ws.matches is None:
            return
        try:
            neural = check_neural(ws.matches)
        except TopoviewerError as exc:
            notify_error(f"{exc}: showing the saved matches without their tuning curves")
            self.book.show_matches(ws.matches["result"])
            return
        self.match_neurons(neural, ws.matches["stimuli"], ws.matches["permutations"])

    def _add_input_layer(self, ws):
        """A workspace's pictures (if any) back in the input cell (their insertion runs them, as a drop would)."""
        from .._reader import _stimulus_kwargs

        if ws.images is None:
            return
        images = np.asarray(ws.images)
        stack = images.ndim == 4 or (images.ndim == 3 and images.shape[-1] != 3)
        extra = {"stack": True, "labels": ws.labels, "categories": ws.categories or None} if stack else None
        rgb = images.ndim == 3 and not stack
        self.viewer.add_image(images, **_stimulus_kwargs(ws.images_name or "workspace", images.shape, rgb, extra))

    # ------------------------------------------------------------------ exports
    def save_figure(self, path, dpi: int = 200, maps: str = "category", on_done=None):
        """Write a figure of the current maps in a worker (matplotlib without a GUI): the publication
        figure (.png/.svg/.pdf at ``dpi``) of the category maps (``maps="category"``) or of the early
        visual maps (``"early"``: orientation with pinwheels, OSI, SF, colour); for .html, the
        interactive page of ``share``.

        The request is checked here (a TopoviewerError for a bad one); ``on_done(path)`` runs on
        the GUI thread once the file is written. Returns the worker.
        """
        from topoviewer.figures import early_figure, figure_format, map_figure
        from topoviewer.share import share_page

        st = self.state
        model = st.model
        if maps == "early":
            if st.early is None:
                raise TopoviewerError("no early visual maps yet: press “Gratings” under Model & maps first")
            figure_format(path)
            early = st.early

            def draw():
                return early_figure(early, model, path, dpi=int(dpi))
            return self._draw_in_worker(path, draw, on_done)
        analysis = st.analysis_for_figure()
        if Path(path).suffix.lower() in (".html", ".htm"):
            stimulators = {s.name: st.stimulator(s.name) for s in model.sheets[:-1]}
            kw = dict(stimulators=stimulators, stimuli=st.stimuli, category=st.category, fwhm_mm=st.fwhm_mm,
                      voxel_mm=st.voxel_mm, t_threshold=st.t_threshold)

            def draw():
                return share_page(analysis, model, path, **kw)[0]
        else:
            figure_format(path)
            kw = dict(category=st.category, dpi=int(dpi), fwhm_mm=st.fwhm_mm, voxel_mm=st.voxel_mm)

            def draw():
                return map_figure(analysis, model, path, **kw)
        return self._draw_in_worker(path, draw, on_done)

    def _draw_in_worker(self, path, draw, on_done):
        def job():
            yield ("drawing", 0, 1)
            return draw()

        return self._start(f"figure {Path(path).name}", job(), on_done or (lambda _: None),
                           self._on_progress("figure"))

    def save_screenshot(self, path, scale: float = 1.0, canvas_only: bool = True):
        path = Path(path)
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
            raise TopoviewerError(f"a screenshot is a picture: expected .png (or .jpg/.tif), got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.viewer.screenshot(str(path), canvas_only=canvas_only, scale=scale)
        return path


def _next_turn(fn, ms: int = 0):
    from qtpy.QtCore import QTimer

    QTimer.singleShot(ms, fn)


def warm_rasters(sheets):
    """Build each sheet's nearest-unit raster map off the GUI thread (the layer book then only indexes)."""
    for s in sheets:
        s.rasterise(np.zeros(s.n_units, np.float32), s.default_pixel_mm())


def _silent(gen):
    """Drive a progress generator without forwarding its progress (used inside another job)."""
    result = None
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        yield ("tick", 0, 0)
    return result


def format_exception(exc) -> str:  # pragma: no cover - debugging helper
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
