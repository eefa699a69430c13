"""The registries of model families.

* :data:`ARCHITECTURES`: architecture name → builder of a :class:`TopoModel`. A builder takes a
  config dict (missing keys take the family's defaults) and returns a model with freshly
  initialised weights; :mod:`topoviewer.io` loads weights into it.
* :data:`FOREIGN_FORMATS`: foreign checkpoints (already safely unpickled by
  :func:`topoviewer.io.safe_torch_load`) → a TopoModel, by key-layout detection. Each detector
  looks at the keys of the loaded object and either claims it or passes; unknown layouts are
  refused with a message naming what was found.

Both tables name their modules lazily, so importing this package imports no torch. This package
imports nothing from :mod:`topoviewer.io`; ``io`` imports from here.
"""

from __future__ import annotations

from ..errors import TopoviewerError

__all__ = ["ARCHITECTURES", "FOREIGN_FORMATS", "build", "check_finite", "classifier_config", "default_config",
           "foreign_safe_globals", "load_foreign"]


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


def _tdann():
    from . import tdann

    return tdann


# name → (module loader, builder attribute); modules import torch lazily.
ARCHITECTURES = {
    "lee2020": (_alexnet, "build_lee2020"),
    "tdann_small": (_alexnet, "build_tdann_small"),
    "toponet_small": (_toponet, "build_toponet_small"),
    "resnet": (_resnet, "build_resnet"),
    "vit": (_toponets, "build_vit"),
    "nanogpt": (_toponets, "build_nanogpt"),
}
#: The architectures topoviewer trains from fresh weights: image classifiers whose nets take
#: (B, C, input_size, input_size) images; their head is made for the data's classes (``fresh_classifier``).
TRAINABLE = ("tdann_small", "toponet_small", "lee2020", "resnet")


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


def classifier_config(model, classes) -> dict:
    """The config of ``model``'s architecture with a classification head for ``classes`` (training a
    model on new labels: ``n_classes`` of the small families, the torchvision ``fc`` of a ResNet,
    replacing e.g. a SimCLR projection head)."""
    config = {**model.config, "classes": list(classes)}
    if "n_classes" in config:
        config["n_classes"] = len(classes)
    elif model.arch == "resnet":
        from .resnet import block_dims

        dims = block_dims(int(config["depth"]), int(config["input_size"]), config.get("widths", model.net.widths))
        config["head"] = [dims[model.net.block_names[-1]][0], len(classes)]
    else:
        raise TopoviewerError(f"a {model.arch!r} model cannot be trained on images here; topoviewer trains the "
                              f"image classifiers {', '.join(TRAINABLE[:-1])} and {TRAINABLE[-1]}")
    return config


def fresh_classifier(arch: str, config: dict, classes):
    """A new, untrained model of ``arch`` (``config`` over its defaults) with a head for ``classes``."""
    import torch

    with torch.device("meta"):  # the config's own head and sheets, without allocating weights
        base = build(arch, config)
    return build(arch, classifier_config(base, classes))


def check_finite(state: dict, path) -> None:
    """Refuse weights containing NaN or infinity, naming the first bad tensor."""
    for key, t in state.items():
        if t.is_floating_point() and not bool(t.isfinite().all()):
            raise TopoviewerError(f"{path}: weight {key!r} contains NaN or infinity; the model file is damaged")


# ---------------------------------------------------------------------- foreign checkpoints
#: name → (module loader, detect(obj) -> bool, load(obj, path, device, **options) -> TopoModel);
#: tried in this order (docs/formats.md).
FOREIGN_FORMATS = {
    "toponets-resnet": (_toponets, "detect_resnet", "load_resnet"),
    "toponets-vit": (_toponets, "detect_vit", "load_vit"),
    "toponets-nanogpt": (_toponets, "detect_nanogpt", "load_nanogpt"),
    "tdann": (_tdann, "detect", "load"),
    "lee2020-alexnet": (_tdann, "detect_alexnet", "load_alexnet"),
}


def foreign_safe_globals() -> list:
    """Harmless classes a foreign checkpoint may pickle besides tensors (for ``safe_torch_load``)."""
    from ..positions import numpy_safe_globals

    return _toponets().SAFE_GLOBALS + numpy_safe_globals()


def load_foreign(obj, path, device: str = "cpu", **options):
    """Dispatch a safely loaded checkpoint object to the family that recognises it."""
    for loader, detect, load in FOREIGN_FORMATS.values():
        module = loader()
        if getattr(module, detect)(obj):
            return getattr(module, load)(obj, path, device=device, **options)
    keys = list(obj)[:6] if isinstance(obj, dict) else type(obj).__name__
    raise TopoviewerError(
        f"{path}: unrecognised checkpoint layout (top-level keys: {keys}); expected a topoviewer model, "
        "a TDANN (VISSL) checkpoint or a TopoNets state dict"
    )
