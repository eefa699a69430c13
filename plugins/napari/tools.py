"""Mouse tools (after napari-threedee): a tool adds its callback when enabled, removes it when disabled.

The callback goes on ``viewer.mouse_drag_callbacks`` so that it works whatever layer is
selected (viewer callbacks run before the active layer's). No Qt here.
"""

from __future__ import annotations


__all__ = ["Tool", "StimulateTool"]


class Tool:
    """Base class: ``enabled`` toggles :meth:`on_enable` / :meth:`on_disable` and the mouse callback."""

    def __init__(self, viewer):
        self.viewer = viewer
        self._enabled = False
        self.on_toggled = []  # callables (enabled: bool)

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool):
        value = bool(value)
        if value == self._enabled:
            return
        self._enabled = value
        if value:
            self.viewer.mouse_drag_callbacks.append(self._mouse_drag)
            self.on_enable()
        else:
            if self._mouse_drag in self.viewer.mouse_drag_callbacks:
                self.viewer.mouse_drag_callbacks.remove(self._mouse_drag)
            self.on_disable()
        for fn in list(self.on_toggled):
            fn(value)

    def on_enable(self):
        pass

    def on_disable(self):
        pass

    def _mouse_drag(self, viewer, event):
        return self.on_mouse(viewer, event)

    def on_mouse(self, viewer, event):  # pragma: no cover - abstract
        raise NotImplementedError


class StimulateTool(Tool):
    """Click a sheet map → microstimulate a disc there and propagate to the next sheet.

    Parameters
    ----------
    viewer : napari.Viewer
    book : LayerBook
        Gives the layout (world → sheet coordinates).
    stimulate : callable(sheet_name, (x, y))
        Does (or schedules) the stimulation and shows errors; the tool only resolves the click.
    """

    #: Clicks with these modifiers are left to napari (Alt: zoom box; Control/Shift: layer tools).
    PASSTHROUGH = {"Alt", "Control", "Shift", "Meta"}

    def __init__(self, viewer, book, stimulate):
        super().__init__(viewer)
        self.book = book
        self.stimulate = stimulate
        self._cursor = None

    def on_enable(self):
        self._cursor = self.viewer.cursor.style
        self.viewer.cursor.style = "crosshair"

    def on_disable(self):
        self.viewer.cursor.style = self._cursor or "standard"

    def on_mouse(self, viewer, event):
        if getattr(event, "type", "mouse_press") != "mouse_press" or getattr(event, "button", 1) != 1:
            return None
        mods = {getattr(m, "name", str(m)) for m in (getattr(event, "modifiers", ()) or ())}
        if mods & self.PASSTHROUGH:
            return None
        layout = self.book.layout
        if layout is None:
            return None
        loc = layout.locate(event.position)
        if loc is None or loc.column == "input":
            return None
        self.stimulate(loc.sheet, loc.xy)
        # a press that stimulated must not also start a pan of the camera
        if hasattr(event, "handled"):
            event.handled = True
        return None
