"""``File ▸ Open Sample ▸ topoviewer``: the embedded default model, with the plugin's docks."""

from __future__ import annotations

__all__ = ["default_model"]

#: Key of the placeholder layer the sample returns while the model loads (the layer book drops it).
LOADING_KEY = "sample/loading"


def default_model():
    """Open the embedded default model in the current viewer, with every dock of the plugin.

    Nothing slow runs on the GUI thread: the model is read and analysed in a thread worker
    (the same path as ``topoviewer-napari``), and napari, which needs a layer back at once,
    gets an empty placeholder (in mm) that the layer book removes when the model arrives.
    Without a viewer (npe2 used from a script) the model's cell frames are returned.
    """
    import napari

    from . import DOCKS
    from .layers import KEY

    viewer = napari.current_viewer()
    if viewer is None:  # e.g. npe2 used without a viewer: the frames are all there is to show
        from topoviewer.io import load

        from .layers import frame_layer_data
        from .layout import SheetLayout

        return [frame_layer_data(SheetLayout(load("sample").sheets))]
    from ._qt.controller import controller_for
    from .launch import add_docks

    ctrl = controller_for(viewer)
    add_docks(viewer, DOCKS)
    ctrl.open_model("sample")
    placeholder = {"name": "topoviewer · loading the default model…", "units": ("mm", "mm"),
                   "metadata": {KEY: LOADING_KEY}}
    return [([], placeholder, "shapes")]
