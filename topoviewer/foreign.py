"""Foreign checkpoints (already safely unpickled) → a TopoModel, by key-layout detection.

Each detector looks at the keys of the loaded object and either claims it (returning a
builder) or passes. Unknown layouts are refused with a message naming what was found.
"""

from __future__ import annotations

from .errors import TopoviewerError

__all__ = ["load_foreign", "DETECTORS"]

#: (name, detect(obj) -> bool, load(obj, path, device, **options) -> TopoModel)
DETECTORS: list = []


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
