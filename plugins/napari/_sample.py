"""``File ▸ Open Sample ▸ topoviewer``: the embedded models (the default, and ``sample-v1`` with a V1-like
sheet), with the plugin's docks."""

from __future__ import annotations

__all__ = ["default_model", "v1_model"]

#: Key of the placeholder layer the sample returns while the model loads (the layer book drops it).
LOADING_KEY = "sample/loading"


def _open_sample(name: str, what: str):
    """Open the embedded model ``name`` in the current viewer, with every dock of the plugin.

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

        return [frame_layer_data(SheetLayout(load(name).sheets))]
    from ._qt.controller import controller_for
    from .launch import add_docks

    ctrl = controller_for(viewer)
    add_docks(viewer, DOCKS)
    ctrl.open_model(name)
    placeholder = {"name": f"topoviewer · loading {what}…", "units": ("mm", "mm"), "metadata": {KEY: LOADING_KEY}}
    return [([], placeholder, "shapes")]


def default_model():
    """The embedded default model (``"sample"``: a TDANN with two IT-like sheets)."""
    return _open_sample("sample", "the default model")


def v1_model():
    """The embedded model with an early, V1-like sheet (``"sample-v1"``; its orientation map shows with the
    Gratings button)."""
    return _open_sample("sample-v1", "the model with a V1-like sheet")
