"""Drag-and-drop while the plugin is open: model files, pictures and folders go straight to the plugin.

napari asks which reader to use when several claim a file (its built-in reader claims pictures
and folders too) and its choice gives a pixel-unit layer that switches the mm scale bar off.
With a controller on the viewer, :class:`DropHandler` takes a drop that only holds paths the
plugin reads and opens them with the plugin's reader (``viewer.open(path, plugin="topoviewer")``):
no dialog, every layer in the sheet's units. Anything else (other files, mixed drops) is
left to napari. A folder without pictures gets one notification: "no pictures in <folder>".
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import QEvent, QObject

__all__ = ["DropHandler", "claims"]


def claims(path) -> bool:
    """Whether a dropped path is the plugin's: a model file, a picture or a folder."""
    from .._reader import IMAGE_SUFFIXES, MODEL_SUFFIXES

    p = Path(path)
    return p.is_dir() or (p.is_file() and p.suffix.lower() in MODEL_SUFFIXES + IMAGE_SUFFIXES)


class DropHandler(QObject):
    """An event filter on the viewer's canvas widget that handles the plugin's drops itself."""

    def __init__(self, viewer, widget):
        super().__init__()
        self.viewer = viewer
        self.widget = widget
        widget.installEventFilter(self)

    def remove(self):
        """Stop filtering and let go of the viewer (no reference may outlive it)."""
        if self.widget is not None:
            self.widget.removeEventFilter(self)
        self.viewer = self.widget = None

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        if event.type() != QEvent.Type.Drop:
            return False
        mime = event.mimeData()
        paths = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []
        if not paths or not all(claims(p) for p in paths):
            return False
        event.acceptProposedAction()
        self.open(paths)
        return True

    def open(self, paths):
        """Open dropped paths with the plugin's reader (what a drop does); returns the layers added."""
        from .._reader import _folder_images
        from .controller import notify_error

        added = []
        for path in paths:
            p = Path(path)
            if p.is_dir() and not _folder_images(p, deep=True):
                notify_error(f"no pictures in {p}")
                continue
            added += self.viewer.open(str(p), plugin="topoviewer")
        return added


def install(viewer):
    """A :class:`DropHandler` on the viewer's Qt canvas widget, or None for a viewer without a window."""
    qt_viewer = getattr(getattr(viewer, "window", None), "_qt_viewer", None)
    return None if qt_viewer is None else DropHandler(viewer, qt_viewer)
