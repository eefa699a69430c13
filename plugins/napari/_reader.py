"""npe2 reader: model files open as the current model; images and folders run through it.

``get_reader`` only looks at the name (and whether a folder holds images): it is cheap
and never raises. The reader functions turn every user error into one notification and
return napari's "nothing to add" sentinel ``[(None,)]``, so the viewer keeps working.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["get_reader", "MODEL_SUFFIXES", "IMAGE_SUFFIXES"]

#: Model files the plugin opens (napari's built-in reader claims none of them).
MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".torch")
#: Stimulus pictures.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NULL = [(None,)]
#: Edge of folder images when no model is loaded (else the model's input size, at least 32).
DEFAULT_FOLDER_SIZE = 64


def get_reader(path):
    """Return a reader for a model file, a picture or a folder of pictures; None otherwise."""
    try:
        if isinstance(path, (list, tuple)):
            if len(path) != 1:
                return None
            path = path[0]
        p = Path(str(path))
        if p.is_dir():
            return read_folder if _folder_images(p, deep=True) else None
        suffix = p.suffix.lower()
        if suffix in MODEL_SUFFIXES:
            return read_model
        if suffix in IMAGE_SUFFIXES:
            return read_image
    except Exception:  # noqa: BLE001 - get_reader must never raise
        return None
    return None


def _viewer():
    try:
        import napari

        return napari.current_viewer()
    except Exception:  # noqa: BLE001
        return None


def _controller():
    viewer = _viewer()
    if viewer is None:
        return None
    from ._qt.controller import controller_for

    return controller_for(viewer)


def _error(message):
    try:
        from napari.utils.notifications import show_error

        show_error(str(message))
    except Exception:  # noqa: BLE001 - no napari: say it on stderr
        import sys

        print(f"topoviewer: {message}", file=sys.stderr)


def read_model(path):
    """Open a model file as the current model of the current viewer (loading in the background)."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    ctrl = _controller()
    if ctrl is None:
        from topoviewer.errors import TopoviewerError
        from topoviewer.io import load

        try:
            load(str(path))
        except TopoviewerError as exc:
            _error(exc)
        return NULL
    ctrl.open_model(str(path))
    return NULL


def _stimulus_kwargs(name, shape, rgb, extra=None):
    from .layers import KEY

    kwargs = {"name": f"input · {name}", "rgb": rgb,
              "metadata": {"topoviewer_stimulus": {"name": name, **(extra or {})}, KEY: "input/image"}}
    ctrl = _controller()
    if ctrl is not None and ctrl.book.layout is not None:
        kwargs.update(ctrl.book.placement_for_input(shape, rgb))
    if not rgb:
        kwargs["colormap"] = "gray"
    return kwargs


def read_image(path):
    """A picture → an image layer in the input cell; the controller runs it through the model."""
    from topoviewer.errors import TopoviewerError
    from topoviewer.stimuli import load_image

    if isinstance(path, (list, tuple)):
        path = path[0]
    try:
        image = load_image(str(path))
    except TopoviewerError as exc:
        _error(exc)
        return NULL
    rgb = image.ndim == 3
    return [(image, _stimulus_kwargs(Path(path).name, image.shape, rgb), "image")]


def read_folder(path):
    """A folder → a stack of pictures; with category subfolders (``DIR/<category>/*.png``) also labels."""
    from topoviewer.errors import TopoviewerError
    from topoviewer.stimuli import load_folder, load_images

    if isinstance(path, (list, tuple)):
        path = path[0]
    p = Path(str(path))
    ctrl = _controller()
    size = DEFAULT_FOLDER_SIZE
    if ctrl is not None and ctrl.state.model is not None:
        size = max(32, ctrl.state.model.input_size)
    try:
        flat = _folder_images(p, deep=False)
        if flat:  # pictures directly in the folder: no categories, the same conversion as load_folder's
            images = load_images(flat, size)
            extra = {"stack": True, "names": [f.name for f in flat]}
        else:
            stim = load_folder(p, size=size)
            images = stim.images
            extra = {"stack": True, "labels": stim.labels, "categories": list(stim.categories)}
    except TopoviewerError as exc:
        _error(exc)
        return NULL
    return [(images, _stimulus_kwargs(p.name, images.shape, False, extra), "image")]


def _folder_images(folder: Path, deep: bool):
    """Pictures directly in ``folder`` (deep: or in its subfolders), sorted; [] if none."""
    files = sorted(f for f in folder.iterdir()
                   if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES)
    if files or not deep:
        return files
    for sub in sorted(folder.iterdir()):
        if sub.is_dir() and not sub.name.startswith(".") and _folder_images(sub, deep=False):
            return [sub]
    return []
