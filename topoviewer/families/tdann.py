"""TDANN (Margalit et al. 2024): a ResNet-18 whose 8 block outputs are cortical sheets.

Weights: a VISSL checkpoint (``model_final_checkpoint_phase199.torch`` or any
``*phase*.torch``): the trunk sits under ``classy_state_dict/base_model/model/trunk`` with
keys ``base_model.<torchvision key>`` plus duplicate ``_feature_blocks.*`` entries; heads
under ``…/model/heads`` (SimCLR ``0.0.clf.0.*`` 512→512 and ``0.1.clf.0.*`` 512→128;
supervised ``0.clf.0.*`` 512→1000). Also accepted: a bare torchvision state dict,
``{"state_dict": …}``, ``{"model": …}``, with or without ``module.`` prefixes — and the
same for a ResNet-50 and for the authors' ``ResNet18_ChanX`` (stages widened by a
``channel_multiplier``, e.g. layer2 with 256 channels; its trunk keeps torchvision's untrained
``fc``, which is dropped). Stage widths are read from the weights.

Positions: a folder with ``layer1.0 … layer4.1`` ``.npz``/``.pkl`` files (see
:mod:`topoviewer.positions`). Every activation value is a unit (``unit_mode="chw"``):
unit i ↔ C-order flat index of (C, H, W); sheet x ↔ w, y ↔ h. The positions must match
the model's output at 224 × 224 (layer1 (64, 56, 56) … layer4 (512, 7, 7)). Without
``positions`` the folder is found as the authors pair them (:data:`PAIRING`,
:func:`guess_positions_folder`); an ambiguous guess is refused.

Scales, as the authors' ``get_positions(rescale=…)``: a folder without ``version.txt`` (or
with ``1``) holds training-time millimetres; ``scale="training"`` shows them, ``"paper"``
(default) multiplies them per cortical area (retina = layer1 ×0.6, V1 = layer2 ×1.5,
V2 = layer3.0 ×1.75, V4 = layer3.1 ×1.4, VTC = layer4 ×7). A folder of any other version is
already at its final scale: both scales show it as stored. ResNet-50 positions are used as
stored (``"training"``; the factors cover the ResNet-18 blocks only). The active scale is named
in ``model.meta["positions"]`` (``scale``, ``version``, ``rescaled``) and in every sheet's label
(``"V1, paper mm"``).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from ..errors import TopoviewerError
from ..sheet import Sheet
from .resnet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WIDTHS,
    ImageNetTopoModel,
    ResNetSheets,
    block_dims,
    block_names,
    find_state_dict,
    head_from_state,
    load_weights,
    resnet_depth_from_keys,
    resnet_widths_from_keys,
    strip_prefixes,
)

__all__ = ["AREAS", "PAPER_SCALE", "detect", "guess_positions_folder", "load"]

#: ResNet-18 block → cortical area (spacetorch ``BRAIN_MAPPING["resnet18"]``).
AREAS = {
    "layer1.0": "retina", "layer1.1": "retina", "layer2.0": "V1", "layer2.1": "V1",
    "layer3.0": "V2", "layer3.1": "V4", "layer4.0": "VTC", "layer4.1": "VTC",
}
#: training mm → paper mm per area (spacetorch ``RESCALE_POSITIONS_TO_HUMANS``).
PAPER_SCALE = {"retina": 0.6, "V1": 1.5, "V2": 1.75, "V4": 1.4, "VTC": 7.0}
SCALES = ("training", "paper")
DEFAULT_SCALE = "paper"


# ---------------------------------------------------------------------------- detection
def _vissl_parts(obj):
    """(trunk, heads) of a VISSL checkpoint, or None."""
    if not isinstance(obj, dict) or "classy_state_dict" not in obj:
        return None
    try:
        model = obj["classy_state_dict"]["base_model"]["model"]
        trunk = model["trunk"]
    except (KeyError, TypeError):
        raise TopoviewerError(
            "a VISSL checkpoint without classy_state_dict/base_model/model/trunk; cannot find the weights"
        ) from None
    return trunk, model.get("heads") or {}


def clean_trunk(trunk: dict) -> dict:
    """VISSL trunk → torchvision keys: drop ``_feature_blocks.*`` duplicates, strip ``base_model.``."""
    out = {}
    for key, value in strip_prefixes(trunk).items():
        if key.startswith("_feature_blocks."):
            continue
        key = key.removeprefix("base_model.")
        out[key] = value
    return out


def _plain_resnet(obj):
    sd = find_state_dict(obj)
    if sd is None:
        return None
    sd = strip_prefixes(sd)
    if any(k.endswith("blur_filter") for k in sd):
        return None  # a TopoNets BlurPool ResNet: its own family
    return sd if resnet_depth_from_keys(sd) else None


def detect(obj) -> bool:
    """A VISSL checkpoint, or any plain torchvision ResNet-18/34/50 state dict."""
    if isinstance(obj, dict) and "classy_state_dict" in obj:
        return True
    return _plain_resnet(obj) is not None


# ---------------------------------------------------------------------------- heads
def vissl_head(heads: dict) -> tuple[list[int], dict, list[str]]:
    """VISSL heads → (head dims, state dict in :class:`ResNetSheets` names, ignored keys)."""
    heads = strip_prefixes(dict(heads))
    if "0.0.clf.0.weight" in heads and "0.1.clf.0.weight" in heads:  # SimCLR projection MLP
        w0, w1 = heads["0.0.clf.0.weight"], heads["0.1.clf.0.weight"]
        dims = [int(w0.shape[1]), int(w0.shape[0]), int(w1.shape[0])]
        mapping = {"0.0.clf.0.": "head_mlp.0.", "0.1.clf.0.": "head_mlp.2."}
    elif "0.clf.0.weight" in heads:  # supervised linear classifier
        w = heads["0.clf.0.weight"]
        dims = [int(w.shape[1]), int(w.shape[0])]
        mapping = {"0.clf.0.": "fc."}
    else:
        return [], {}, sorted(heads)
    state, ignored = {}, []
    for key, value in heads.items():
        for old, new in mapping.items():
            if key.startswith(old) and key[len(old):] in ("weight", "bias"):
                state[new + key[len(old):]] = value
                break
        else:
            ignored.append(key)
    return dims, state, ignored


# ---------------------------------------------------------------------------- positions folder guess
_SIMCLR_SWAP = ("simclr_spatial_resnet18_fuzzy_swappedon_SineGrating2019_lw0/"
                "resnet18_retinotopic_init_fuzzy_swappedon_SineGrating2019_NBVER2")
_SUPERVISED = "supervised_resnet18/resnet18_retinotopic_init_fuzzy_swappedon_SineGrating2019"
_SUPERVISED_SWAP = "supervised_resnet18_lw0/resnet18_retinotopic_init_fuzzy_swappedon_SineGrating2019"

#: The authors' pairing: checkpoint folder (``weights.checkpoint_dir``) or analysis-config name →
#: positions folder (``TRUNK_PARAMS.position_dir``, relative to the release's ``positions/``), as
#: the TDANN analysis configs and ``spacetorch.analyses.core.POS_LOOKUP`` state it. First full
#: match wins. The SimCLR checkpoints trained on ecoset, on sine gratings and with no spatial loss
#: (lw0) go with the *supervised* network's positions, not with the ``…_NBVER2`` folder.
PAIRING = (
    (r"simclr_ecoset|simclr_spatial_resnet18_fuzzy_swappedon_SineGrating2019_ecoset_checkpoints"
     r"|simclr_spatial_resnet18_trained_sine_gratings|simclr_spatial_SG_pretrain_minimal_aug_biased"
     r"|simclr_spatial_resnet18_(fuzzy_)?swappedon_SineGrating2019_lw0(_checkpoints)?", _SUPERVISED),
    (r"simclr_spatial_resnet18_swappedon_SineGrating2019_(isoswap_3|old_scl)\w*"
     r"|white_noise_trained|white_noise_training_checkpoints", _SIMCLR_SWAP),
    (r"supervised_spatial_resnet18_swappedon_SineGrating2019(?!_lw0_seed)\w*|supervised_resnet18_lw0_checkpoints",
     _SUPERVISED_SWAP),
    (r"supervised_resnet18|resnet18_supervised", _SUPERVISED),
    (r"supervised_resnet50(_checkpoints)?", "supervised_resnet50/resnet50_retinotopic_init_swappedon_SineGrating2019"),
    (r"supervised_resnet18_chanx2|resnet18_chanx2_supervised_checkpoints",
     "supervised_resnet18_chanx2/resnet18_chanx2_retinotopic_init_swappedon_SineGrating2019"),
)
_HINT = "pass the positions folder explicitly: --positions DIR (API: load(path, positions=DIR))"


def paired_positions(path) -> tuple[str, str] | None:
    """``(name, position_dir)`` when the checkpoint's file or one of its three folders is named in
    :data:`PAIRING` (nearest name first), else None."""
    path = Path(path).absolute()
    for name in [path.stem, *(p.name for p in list(path.parents)[:3])]:
        for pattern, rel in PAIRING:
            if re.fullmatch(pattern, name):
                return name, rel
    return None


def guess_positions_folder(path, layers, max_dirs: int = 3000) -> Path:
    """The default positions folder of a TDANN checkpoint, as the authors pair them; never a guess between two.

    1. A checkpoint named in :data:`PAIRING` (its file or one of its folders) goes with the
       positions folder the authors' configs give it, looked up as ``<ancestor>/positions/<dir>``
       or ``<ancestor>/<dir>`` for the checkpoint's five nearest folders (the release keeps
       ``checkpoints/`` and ``positions/`` side by side). Missing → an error naming it.
    2. Any other checkpoint: the nearest folder (the checkpoint's, its parent, its grandparent)
       that has folders holding ``<layer>.npz|.pkl`` up to three levels below it decides; exactly
       one such positions folder is taken, several are refused with the candidates listed.

    Every refusal asks for ``--positions DIR``.
    """
    path = Path(path).absolute()  # where the user put it (symlinks are not followed)
    paired = paired_positions(path)
    if paired is not None:
        name, rel = paired
        looked = list(path.parents)[:5]
        for anc in looked:
            for cand in (anc / "positions" / rel, anc / rel):
                if cand.is_dir():
                    return cand
        raise TopoviewerError(
            f"{path}: the authors pair {name!r} with the positions folder positions/{rel}, which is not "
            f"under {looked[0]} or the {len(looked) - 1} folders above it; {_HINT}"
        )
    roots = []
    for p in [path.parent, *list(path.parent.parents)[:2]]:
        if p not in roots and p.is_dir():
            roots.append(p)
    seen: set = set()
    budget = [max_dirs]
    for root in roots:  # nearest folder first: the first one holding a match decides
        here = _scan_positions_folders(root, layers, seen, budget)
        if len(here) == 1:
            return here[0]
        if here:
            listed = ", ".join(str(c) for c in here[:5]) + (f" and {len(here) - 5} more" if len(here) > 5 else "")
            raise TopoviewerError(
                f"{path}: {len(here)} positions folders could belong to this checkpoint ({listed}); {_HINT}"
            )
    raise TopoviewerError(
        f"{path}: no positions folder found next to the checkpoint (a folder with {layers[0]}.npz/.pkl … "
        f"{layers[-1]}); {_HINT}"
    )


def _scan_positions_folders(root: Path, layers, seen: set, budget: list) -> list:
    """Folders up to three levels below ``root`` holding ``<layer>.npz|.pkl`` (breadth first)."""
    out, frontier = [], [(root, 0)]
    while frontier and budget[0] > 0:
        d, depth = frontier.pop(0)
        if d in seen:
            continue
        seen.add(d)
        budget[0] -= 1
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        files = {e.name for e in entries if e.is_file()}
        if any(f"{n}{s}" in files for n in layers for s in (".npz", ".pkl")):
            out.append(d)
            continue
        if depth < 3:
            frontier += [(Path(e.path), depth + 1) for e in sorted(entries, key=lambda e: e.name)
                         if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
    return out


# ---------------------------------------------------------------------------- loader
def load(obj, path, device: str = "cpu", positions=None, scale=None, **_options):
    """A TDANN VISSL checkpoint (or a plain ResNet state dict) + positions → TopoModel.

    The trunk may be torchvision's ResNet-18/50 or the authors' ``ResNet18_ChanX`` (wider stages,
    read from the weights). Positions: ``positions`` or the folder :func:`guess_positions_folder`
    pairs with the checkpoint. Scale (ResNet-18 blocks, as the authors' ``get_positions``): a
    version-1 folder (no ``version.txt``) holds training mm and ``"paper"`` multiplies them by
    :data:`PAPER_SCALE`; any other version is already at its final scale and is used as stored.
    ResNet-50 positions are always used as stored (the authors' factors cover the ResNet-18 blocks).
    """
    path = Path(path)
    requested = None if scale in (None, "") else str(scale)
    if requested is not None and requested not in SCALES:
        raise TopoviewerError(f"unknown positions scale {requested!r}; expected 'training' or 'paper'")
    parts = _vissl_parts(obj)
    ignored_heads: list = []
    if parts is not None:
        trunk, heads = parts
        if not isinstance(trunk, dict):
            raise TopoviewerError(f"{path}: the VISSL trunk is not a state dict")
        state = clean_trunk(trunk)
        head, head_state, ignored_heads = vissl_head(heads)
        state.pop("fc.weight", None)  # ResNet18_ChanX and SpatialResNet50 keep torchvision's untrained fc
        state.pop("fc.bias", None)
        state.update(head_state)
        source = "VISSL checkpoint"
    else:
        state = _plain_resnet(obj)
        if state is None:
            raise TopoviewerError(f"{path}: not a TDANN/ResNet checkpoint")
        head = head_from_state(state)
        source = "state dict"
    depth = resnet_depth_from_keys(state)
    if depth is None:
        raise TopoviewerError(
            f"{path}: the weights are not a torchvision ResNet-18/34/50 trunk (first keys: {list(state)[:4]})"
        )
    layers = block_names(depth)
    widths = resnet_widths_from_keys(state)
    dims = block_dims(depth, 224, widths)

    from ..positions import load_positions, sheets_from_positions

    guessed = positions is None
    if guessed:
        positions = guess_positions_folder(path, layers)
    # TDANN area scaling applies to ResNet-18 blocks from a TDANN checkpoint or positions folder;
    # user coordinate files are used as given
    folder = Path(positions).expanduser().is_dir()
    areas = depth == 18 and (parts is not None or folder)
    if areas:
        scale = requested or DEFAULT_SCALE
    elif requested == "paper" and folder:
        raise TopoviewerError(
            f"{positions}: ResNet-{depth} positions have no paper scale (the authors rescale the ResNet-18 blocks "
            "only); they are used as stored: --scale training"
        )
    else:
        scale = "training" if folder and parts is not None else "as given"  # a TDANN folder: training mm
    loaded, version = load_positions(positions, layers)
    rescaled = areas and scale == "paper" and version == 1  # the authors rescale version-1 folders only
    sheets, modes = sheets_from_positions(layers, dims, loaded, source=positions, areas=AREAS if areas else None,
                                          scale=scale, factors=PAPER_SCALE if rescaled else None)

    config = {
        "depth": depth, "blurpool": False, "unit_mode": modes, "head": head, "input_size": 224,
        "resize_size": 256.0, "extent_mm": 10.0, "classes": [], "widths": list(widths),
    }
    net = ResNetSheets(depth, False, modes, head, widths)
    load_weights(net, state, path)
    family = "tdann" if depth == 18 else f"resnet{depth}"
    name = path.parent.name if path.stem.startswith("model_") and path.parent.name else path.stem
    meta = {
        "family": family,
        "source": {"file": str(path), "layout": source, "ignored_head_keys": ignored_heads[:20]},
        "positions": {
            "source": str(positions), "guessed": guessed, "version": version, "scale": scale,
            "scales": list(SCALES) if areas else [scale], "rescaled": rescaled,
            "factors": {l: (PAPER_SCALE[AREAS[l]] if rescaled else 1.0) for l in layers},
        },
        "preprocess": "RGB, resize shorter side to 256, centre-crop 224, ImageNet mean/std",
        "degrees_per_image": 8.0,
        "modality": "vision",
    }
    if widths != WIDTHS:
        meta["trunk"] = f"ResNet{depth}_ChanX"
        meta["channel_multiplier"] = [w / b if w % b else w // b for w, b in zip(widths, WIDTHS)]
    if head and len(head) == 3:
        meta["head"] = "SimCLR projection (512→512→128): 'logits' are embeddings"
    model = ImageNetTopoModel(
        net, sheets, "resnet", config, input_size=224, in_channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        meta=meta, name=name, resize_size=256.0,
    )
    return model.to(device)


def expected_units(depth: int = 18) -> dict[str, int]:
    """Units per sheet at 224 px (layer1: 200,704 … layer4: 25,088 for ResNet-18)."""
    return {k: math.prod(v) for k, v in block_dims(depth, 224).items()}


# ---------------------------------------------------------------------------- Lee 2020 AlexNet + coordinates
def _alexnet_state(obj):
    sd = find_state_dict(obj)
    if sd is None:
        return None
    sd = strip_prefixes(sd)
    keys = ("features.0.weight", "classifier.1.weight", "classifier.4.weight", "classifier.6.weight")
    return sd if all(k in sd for k in keys) else None


def detect_alexnet(obj) -> bool:
    """A torchvision-named AlexNet state dict (Lee et al. 2020 TDANN: topographic FC6/FC7)."""
    return _alexnet_state(obj) is not None


def load_alexnet(obj, path, device: str = "cpu", positions=None, **_options):
    """Lee 2020 AlexNet weights + user coordinates for ``fc6`` and ``fc7`` → TopoModel (arch ``lee2020``)."""
    from ..positions import load_positions, sheet_bounds
    from .alexnet import build_lee2020

    path = Path(path)
    state = _alexnet_state(obj)
    if positions is None:
        raise TopoviewerError(
            f"{path}: an AlexNet TDANN needs the positions of its fc6 and fc7 units; pass them with "
            "--positions FILE.npz (arrays 'fc6' and 'fc7', each (N, 2) in mm) or a folder of fc6.npz/fc7.npz"
        )
    w6, w7, w8 = state["classifier.1.weight"], state["classifier.4.weight"], state["classifier.6.weight"]
    if tuple(w6.shape[1:]) != (256 * 36,):
        raise TopoviewerError(f"{path}: classifier.1 expects {w6.shape[1]} inputs; the Lee 2020 AlexNet has 9216")
    loaded, version = load_positions(positions, ["fc6", "fc7"])
    sheets = []
    for name, label, n in (("fc6", "cIT", w6.shape[0]), ("fc7", "aIT", w7.shape[0])):
        pos = np.asarray(loaded[name].coordinates, dtype=np.float64)
        if len(pos) != n:
            raise TopoviewerError(f"{positions}: {name} has {len(pos)} positions but the layer has {n} units")
        origin, extent = sheet_bounds(pos)
        sheets.append(Sheet(name, pos, extent, origin, label=label))
    config = {
        "fc_units": [int(w6.shape[0]), int(w7.shape[0])], "n_classes": int(w8.shape[0]), "dropout": 0.5,
        "extent_mm": [float(max(s.extent_mm)) for s in sheets][:1] * 2, "positions_seed": 0, "classes": [],
    }
    model = build_lee2020(config, sheets=sheets)
    load_weights(model.net, state, path)
    model.name = path.stem
    model.meta = {
        "family": "lee2020", "modality": "vision",
        "source": {"file": str(path), "layout": "state dict"},
        "positions": {"source": str(positions), "guessed": False, "version": version, "scale": "as given"},
    }
    return model.to(device)
