"""GUI tests of the napari plugin: a real viewer under Xvfb (pytest-xvfb), real docks and callbacks.

Skipped as a whole when the GUI stack (napari, pytest-qt) is not installed or no X server
can be had. The tiny untrained model of ``tests/conftest.py`` keeps every run fast.
"""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

try:  # the GUI stack is an optional extra
    import napari  # noqa: F401
    import pytestqt  # noqa: F401
except ImportError:  # pragma: no cover
    collect_ignore_glob = ["test_*.py"]
else:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or shutil.which("Xvfb")):
        collect_ignore_glob = ["test_*.py"]  # pragma: no cover - no X server: nothing can render


@pytest.fixture(scope="session")
def tiny_analysed(tiny_model_file):
    """The tiny model loaded from its file, the localizer and the analysis: computed once per session."""
    from topoviewer.io import load
    from topoviewer.pipeline import analyze, default_stimuli

    model = load(str(tiny_model_file))
    stimuli = default_stimuli(model)
    return model, stimuli, analyze(model, stimuli)


@pytest.fixture
def topo(make_napari_viewer, tiny_model_file, tiny_analysed):
    """A shown viewer with every dock of the plugin and the tiny model analysed.

    The analysis is the session's (the real open-and-analyse path is exercised in
    ``test_start.py``); handing it to the state is exactly what the analysis worker does.
    """
    topo = open_topo(make_napari_viewer(show=True), tiny_model_file, tiny_analysed)
    yield topo
    topo.ctrl.close()


def open_topo(viewer, tiny_model_file, tiny_analysed):
    """Every dock of the plugin in `viewer`, with the tiny model and its analysis handed to the state."""
    from topoviewer_napari.launch import open_viewer

    viewer.window._qt_window.resize(1400, 900)
    viewer, ctrl = open_viewer(None, viewer=viewer)
    model, stimuli, analysis = tiny_analysed
    ctrl.state.set_model(model, str(tiny_model_file), stimuli=stimuli, analysis=analysis)
    ctrl.wait(60)  # the secondary maps are drawn on the next event-loop turns
    ctrl.book.fit()
    return SimpleNamespace(viewer=viewer, ctrl=ctrl, state=ctrl.state, book=ctrl.book, docks=ctrl.docks,
                           model_file=tiny_model_file)


@pytest.fixture(scope="module")
def shared_topo(qapp, tiny_model_file, tiny_analysed):
    """Like ``topo``, but one viewer for a whole test module (tests that leave the settings as they found them):
    opening the plugin costs seconds per test.

    The viewer gets an app model of its own, as napari's ``make_napari_viewer`` gives each test one
    (``mock_app_model``): registered into napari's global app, a second module's viewer would register
    the plugins' commands again ("already registered").
    """
    from unittest.mock import patch

    import napari
    from app_model import Application
    from napari._app_model._app import NapariApplication, _napari_names
    from napari._qt._qapp_model.qactions import init_qactions
    from napari.plugins import _initialize_plugins

    app = NapariApplication("topoviewer_shared_viewer")
    app.injection_store.namespace = _napari_names
    _initialize_plugins.cache_clear()
    init_qactions.cache_clear()
    with patch.object(NapariApplication, "get_app_model", return_value=app):
        topo = open_topo(napari.Viewer(show=True), tiny_model_file, tiny_analysed)
        yield topo
        topo.ctrl.close()
        topo.viewer.close()
    Application.destroy("topoviewer_shared_viewer")
    _initialize_plugins.cache_clear()
    init_qactions.cache_clear()


class FakeMouseEvent:
    """What napari hands mouse callbacks: position (world), type, button, modifiers."""

    def __init__(self, position, type="mouse_press", button=1, modifiers=()):
        self.position = tuple(float(v) for v in position)
        self.type = type
        self.button = button
        self.modifiers = modifiers
        self.handled = False
        self.view_direction = None
        self.dims_displayed = [0, 1]


@pytest.fixture
def fake_event():
    return FakeMouseEvent


def notifications_since(n0):
    from napari.utils.notifications import notification_manager

    return [str(r.message) for r in notification_manager.records[n0:]]


@pytest.fixture
def notes():
    """``notes()`` → messages of the notifications shown since the test started."""
    from napari.utils.notifications import notification_manager

    n0 = len(notification_manager.records)
    return lambda: notifications_since(n0)


def pytest_configure(config):
    # third-party deprecation chatter (pydantic via npe2/napari) drowns the report
    for line in ("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning",
                 "ignore:.*json_encoders.*", "ignore:.*extra keyword arguments on `Field`.*",
                 "ignore:.*allow_mutation.*"):
        config.addinivalue_line("filterwarnings", line)
