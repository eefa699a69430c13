"""Foreign checkpoints (already safely unpickled) → a TopoModel, by key-layout detection.

Each detector looks at the keys of the loaded object and either claims it (returning a
builder) or passes. Unknown layouts are refused with a message naming what was found.
"""

from __future__ import annotations

from .errors import TopoviewerError

__all__ = ["DETECTORS", "SAFE_GLOBALS", "load_foreign"]

#: (name, detect(obj) -> bool, load(obj, path, device, **options) -> TopoModel), tried in order.
DETECTORS: list = []

#: Harmless classes a foreign checkpoint may pickle besides tensors (passed to safe_torch_load).
SAFE_GLOBALS: list = []


def _register_published():
    """The published families (FORMATS.md §1–3). They import torch, so this module is only
    imported lazily (by :func:`topoviewer.io.load` when it meets a pickle)."""
    from .families import tdann, toponets
    from .positions import numpy_safe_globals

    SAFE_GLOBALS.extend(toponets.SAFE_GLOBALS + numpy_safe_globals())
    DETECTORS.extend([
        ("toponets-resnet", toponets.detect_resnet, toponets.load_resnet),
        ("toponets-vit", toponets.detect_vit, toponets.load_vit),
        ("toponets-nanogpt", toponets.detect_nanogpt, toponets.load_nanogpt),
        ("tdann", tdann.detect, tdann.load),
        ("lee2020-alexnet", tdann.detect_alexnet, tdann.load_alexnet),
    ])


_register_published()


def load_foreign(obj, path, device: str = "cpu", **options):
    """Dispatch a safely loaded checkpoint object to the family that recognises it."""
    for _name, detect, loader in DETECTORS:
        if detect(obj):
            return loader(obj, path, device=device, **options)
    keys = list(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
    raise TopoviewerError(
        f"{path}: unrecognised checkpoint layout (top-level keys: {keys}); expected a topoviewer model, "
        "a TDANN (VISSL) checkpoint or a TopoNets state dict"
    )
