"""Shared pieces of the docks: a base class wired to the viewer's controller, small helpers."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from topoviewer.errors import TopoviewerError

from .controller import controller_for, notify_error

__all__ = ["Dock", "ask_save_path", "ask_open_path", "group", "breakable", "rich_label"]


def breakable(text: str) -> str:
    """Let long paths and names wrap in a narrow dock (zero-width spaces after / , and _)."""
    for ch in "/,_=":
        text = text.replace(ch, ch + "\u200b")
    return text


def _disconnector(connections):
    def disconnect(*_):
        for signal, fn in connections:
            signal.disconnect(fn)
        connections.clear()
    return disconnect


class Dock(QWidget):
    """A dock of the plugin: knows the viewer, its controller and state; disconnects itself when destroyed."""

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.ctrl = controller_for(viewer)
        self.state = self.ctrl.state
        self.ctrl.docks[type(self).__name__] = self
        self._connections = []
        self.destroyed.connect(_disconnector(self._connections))
        # content in a scroll area: a dock never forces the window taller than the screen
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(330)
        inner = QWidget()
        scroll.setWidget(inner)
        outer.addWidget(scroll)
        self.content = QVBoxLayout(inner)
        self.content.setContentsMargins(6, 6, 6, 6)
        self.content.setSpacing(6)

    def listen(self, signal, fn):
        signal.connect(fn)
        self._connections.append((signal, fn))

    def guarded(self, fn, *args, **kwargs):
        """Call ``fn``; a TopoviewerError becomes a notification. Returns fn's value or None."""
        try:
            return fn(*args, **kwargs)
        except TopoviewerError as exc:
            notify_error(str(exc))
            return None


def group(title: str, form: bool = False):
    box = QGroupBox(title)
    lay = QFormLayout() if form else QVBoxLayout()
    lay.setContentsMargins(6, 6, 6, 6)
    if form:
        lay.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    box.setLayout(lay)
    return box, lay


def rich_label(text: str = "") -> QLabel:
    """A wrapping, selectable rich-text label (read-outs and summaries)."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def ask_save_path(parent, title, suggestion, filters):
    path, _ = QFileDialog.getSaveFileName(parent, title, str(suggestion), filters)
    return path or None


def ask_open_path(parent, title, filters, directory=False):
    if directory:
        path = QFileDialog.getExistingDirectory(parent, title)
    else:
        path, _ = QFileDialog.getOpenFileName(parent, title, "", filters)
    return path or None
