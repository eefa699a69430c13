"""``File ▸ Open Sample ▸ topoviewer``: the embedded default model, with the plugin's docks."""

from __future__ import annotations

__all__ = ["default_model"]


def default_model():
    """Load the embedded default model into the current viewer; returns the cell frames layer.

    The model is read here (fast); the analysis runs in the background and fills the
    frames with maps. napari needs at least one layer back: the frames (cells with titles),
    which the layer book then adopts by their key.
    """
    import napari

    from topoviewer.io import load

    from ._qt.controller import controller_for
    from .layers import frame_layer_data
    from .layout import SheetLayout

    viewer = napari.current_viewer()
    model = load("sample")
    if viewer is None:  # e.g. npe2 used without a viewer: the frames are all there is to show
        return [frame_layer_data(SheetLayout(model.sheets))]
    ctrl = controller_for(viewer)
    ensure_docks(viewer)
    ctrl.open_model(model, name="sample")
    frames = frame_layer_data(SheetLayout(model.sheets))
    if ctrl.book.get("layout/cells") is not None:
        ctrl.book.remove(lambda key: key == "layout/cells")
    return [frames]


def ensure_docks(viewer, names=("Model & maps", "Purity")):
    """Open the plugin's docks (once) in a viewer that has a window."""
    window = getattr(viewer, "window", None)
    if window is None or not hasattr(window, "add_plugin_dock_widget"):
        return []
    out = []
    for i, name in enumerate(names):
        try:
            out.append(window.add_plugin_dock_widget("topoviewer", name, tabify=i > 0 and name != "Purity"))
        except Exception:  # noqa: BLE001 - a missing dock must not stop the sample
            pass
    return out
