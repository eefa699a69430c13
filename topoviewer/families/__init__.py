"""The registry of model families: architecture name → builder of a :class:`TopoModel`.

A builder takes a config dict (missing keys take the family's defaults) and returns a
model with freshly initialised weights; :mod:`topoviewer.io` loads weights into it.
"""

from __future__ import annotations

from ..errors import TopoviewerError

__all__ = ["ARCHITECTURES", "build", "default_config"]


def _alexnet():
    from . import alexnet

    return alexnet


def _toponet():
    from . import toponet_small

    return toponet_small


def _resnet():
    from . import resnet

    return resnet


def _toponets():
    from . import toponets

    return toponets


# name → (module loader, builder attribute); modules import torch lazily.
ARCHITECTURES = {
    "lee2020": (_alexnet, "build_lee2020"),
    "tdann_small": (_alexnet, "build_tdann_small"),
    "toponet_small": (_toponet, "build_toponet_small"),
    "resnet": (_resnet, "build_resnet"),
    "vit": (_toponets, "build_vit"),
    "nanogpt": (_toponets, "build_nanogpt"),
}


def _builder(arch: str):
    if arch not in ARCHITECTURES:
        raise TopoviewerError(f"unknown architecture {arch!r}; expected one of: {', '.join(ARCHITECTURES)}")
    loader, attr = ARCHITECTURES[arch]
    return getattr(loader(), attr)


def default_config(arch: str) -> dict:
    """The family's default configuration for ``arch``."""
    return dict(_builder(arch).defaults)


def build(arch: str, config: dict | None = None, sheets=None):
    """Build an untrained model of ``arch``; ``sheets`` (saved positions) override the generated ones."""
    builder = _builder(arch)
    unknown = set(config or {}) - set(builder.defaults)
    if unknown:
        raise TopoviewerError(
            f"unknown config keys for {arch!r}: {', '.join(sorted(unknown))}; expected: {', '.join(builder.defaults)}"
        )
    return builder({**builder.defaults, **(config or {})}, sheets=sheets)
