"""A viewer session on disk: one JSON file (settings, model path and hash, stimulation log, the
lesioned units, the matched neurons) and one NPZ file beside it (the pictures that were run through
the network).

``save_workspace(ws, "session.json")`` writes ``session.json`` and ``session.npz``;
:func:`load_workspace` reads both back; :func:`check_model` tells whether the model file is
still the one the session was made with (same SHA-256) and :func:`model_to_open` whether the
model already open is that one or the workspace's file must be opened; :func:`check_neural` does
the same for the neural responses file of the matched neurons. Plain Python + numpy:
the napari plugin turns its state into a :class:`Workspace` and back; nothing here knows Qt.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import defaults
from .errors import TopoviewerError

__all__ = ["Workspace", "save_workspace", "load_workspace", "model_hash", "check_model", "check_neural",
           "model_to_open", "FORMAT"]

FORMAT = "topoviewer-workspace"
FORMAT_VERSION = 1


@dataclass
class Workspace:
    """What a session restores: the model, the map settings, the pictures and the stimulation log.

    Attributes
    ----------
    model : str
        ``"sample"`` or the model file's path.
    model_sha256 : str
        SHA-256 of the model file (:func:`model_hash`).
    category, fwhm_mm, voxel_mm, dprime_threshold, t_threshold, stim_radius_mm
        The map settings.
    images : ndarray or None
        The pictures last run through the network: (H, W), (H, W, 3) or a stack (n, H, W).
    images_name : str
    labels : ndarray or None
        Category index of each picture of a labelled stack.
    categories : list
        The stack's category names.
    log : list of dict
        The stimulation log rows (:data:`topoviewer_napari.state.LOG_FIELDS`).
    lesion : dict
        The units silenced on the model, ``{sheet: sorted unit indices}`` (empty: the intact model).
    matches : dict or None
        The matched neurons: ``neural`` (the responses file's path), ``neural_sha256``, ``stimuli``
        (the folder's path), ``permutations`` and ``result`` (:func:`topoviewer.suites.match_suite`'s).
    """

    model: str
    model_sha256: str
    category: str = "faces"
    fwhm_mm: float = defaults.FWHM_MM
    voxel_mm: float = defaults.VOXEL_MM
    dprime_threshold: float = defaults.DPRIME_THRESHOLD
    t_threshold: float = defaults.VOXEL_T_THRESHOLD
    stim_radius_mm: float = defaults.STIM_RADIUS_MM
    images: np.ndarray | None = None
    images_name: str = ""
    labels: np.ndarray | None = None
    categories: list = field(default_factory=list)
    log: list = field(default_factory=list)
    lesion: dict = field(default_factory=dict)
    matches: dict | None = None


def model_path(source: str) -> Path:
    """The file behind a model source (``"sample"``, ``"sample-v1"`` → the embedded model's file)."""
    from .io import is_sample, sample_path

    return sample_path(source) if is_sample(source) else Path(source).expanduser()


def model_hash(source: str) -> str:
    """SHA-256 (hex) of a model file; ``source`` may name an embedded model (``"sample"``)."""
    path = model_path(source)
    if not path.is_file():
        raise TopoviewerError(f"model file {path} not found; a workspace needs the model it was made with")
    from .io import file_sha256

    return file_sha256(path)


def check_model(ws: Workspace) -> Path:
    """The workspace's model file, if it exists and still has the saved hash; else a TopoviewerError
    naming the file and the SHA-256 expected."""
    path = model_path(ws.model)
    expected = f"expected the model file with SHA-256 {ws.model_sha256[:12]}…"
    return _unchanged(path, lambda: model_hash(ws.model) == ws.model_sha256,
                      f"the workspace's model {path} is not found; {expected} "
                      "(open it, or a copy of it, first, then the workspace)",
                      f"model file {path} has changed since the workspace was saved (SHA-256 differs); "
                      f"{expected}, the one the workspace was made with")


def _unchanged(path: Path, same, missing: str, changed: str) -> Path:
    """`path` if it is a file and ``same()`` (its hash is the saved one); else the error saying which."""
    if not path.is_file():
        raise TopoviewerError(missing)
    if not same():
        raise TopoviewerError(changed)
    return path


def model_to_open(ws: Workspace, open_source: str = "") -> Path | None:
    """Which model restoring ``ws`` needs, given the model open from ``open_source`` (``""``: none).

    ``None`` when the open model's file has the workspace's SHA-256 (the same model, wherever its
    file lives): the session is applied to it. Otherwise the workspace's own model file, once
    :func:`check_model` has found it unchanged; if it has not, a TopoviewerError says what is
    expected, and nothing of the workspace (its stimulation sites least of all) may be applied
    to the open model.
    """
    if open_source and model_path(open_source).is_file() and model_hash(open_source) == ws.model_sha256:
        return None
    return check_model(ws)


def check_neural(matches: dict) -> Path:
    """The neural responses file of a workspace's `matches`, if it exists and still has the saved
    hash; else a TopoviewerError naming the file and the SHA-256 expected."""
    from .io import file_sha256

    path = Path(matches["neural"]).expanduser()
    expected = f"expected the file with SHA-256 {matches['neural_sha256'][:12]}…"
    return _unchanged(path, lambda: file_sha256(path) == matches["neural_sha256"],
                      f"the workspace's neural responses {path} are not found; {expected}",
                      f"neural responses {path} have changed since the workspace was saved (SHA-256 "
                      f"differs); {expected}")


def _check_lesion(lesion) -> dict:
    if not isinstance(lesion, dict):
        raise TypeError("lesion must map sheet names to lists of unit indices")
    out = {}
    for sheet, units in lesion.items():
        idx = np.asarray(units)
        if not isinstance(sheet, str) or idx.ndim != 1 or (idx.size and (
                not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0)):
            raise ValueError(f"lesion of {sheet!r} must be a list of unit indices ≥ 0")
        out[sheet] = [int(v) for v in idx]
    return out


_MATCH_KEYS = {"neural": str, "neural_sha256": str, "stimuli": str, "permutations": int, "result": dict}


def _check_matches(matches):
    if matches is None:
        return None
    if not isinstance(matches, dict) or any(not isinstance(matches.get(k), t) for k, t in _MATCH_KEYS.items()):
        raise TypeError("matches must hold " + ", ".join(f"{k} ({t.__name__})" for k, t in _MATCH_KEYS.items()))
    if not isinstance(matches["result"].get("neurons"), list):
        raise TypeError("matches' result must hold a list of neurons")
    return matches


def _paths(path) -> tuple[Path, Path]:
    path = Path(path).expanduser()
    if path.suffix.lower() != ".json":
        raise TopoviewerError(f"a workspace is a .json file (with a .npz beside it), got {path.name!r}")
    return path, path.with_suffix(".npz")


def save_workspace(ws: Workspace, path, force: bool = False) -> Path:
    """Write ``ws`` to ``path`` (``.json``) and the pictures to the ``.npz`` beside it, atomically.

    Refuses to replace existing files unless ``force``. Returns the JSON path.
    """
    from .io import atomic_write
    from .validate import output_file

    jpath, npath = _paths(path)
    for p in (jpath, npath):
        output_file(p, force=force, what="workspace")
    head = {k: v for k, v in asdict(ws).items() if k not in ("images", "labels")}
    head["categories"] = [str(c) for c in ws.categories]
    head.update(format=FORMAT, version=FORMAT_VERSION, pictures=npath.name,
                has_images=ws.images is not None)
    arrays = {}
    if ws.images is not None:
        arrays["images"] = np.asarray(ws.images, np.float32)
        if ws.labels is not None:
            arrays["labels"] = np.asarray(ws.labels, np.int64)
    text = json.dumps(head, indent=2, default=_json_default)

    def write_npz(tmp):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(npath, write_npz)
    atomic_write(jpath, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return jpath


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def load_workspace(path) -> Workspace:
    """Read a workspace written by :func:`save_workspace`; a malformed one → TopoviewerError."""
    jpath, npath = _paths(path)
    if not jpath.is_file():
        raise TopoviewerError(f"workspace {jpath} not found")
    try:
        head = json.loads(jpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TopoviewerError(f"workspace {jpath} is not readable JSON ({exc}); expected a topoviewer workspace")
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise TopoviewerError(f"{jpath} is not a topoviewer workspace (expected \"format\": \"{FORMAT}\")")
    if head.get("version") != FORMAT_VERSION:
        raise TopoviewerError(f"workspace {jpath} has version {head.get('version')!r}; this topoviewer reads "
                              f"version {FORMAT_VERSION}")
    names = {f for f in Workspace.__dataclass_fields__ if f not in ("images", "labels")}
    try:
        ws = Workspace(**{k: head[k] for k in names if k in head})
        for k in ("fwhm_mm", "voxel_mm", "dprime_threshold", "t_threshold", "stim_radius_mm"):
            setattr(ws, k, float(getattr(ws, k)))
            if not (np.isfinite(getattr(ws, k)) and getattr(ws, k) > 0):
                raise ValueError(f"{k} must be a positive number, got {getattr(ws, k)}")
        if not isinstance(ws.model, str) or not isinstance(ws.log, list):
            raise TypeError("model must be a string and log a list")
        ws.lesion, ws.matches = _check_lesion(ws.lesion), _check_matches(ws.matches)
    except (TypeError, ValueError) as exc:
        raise TopoviewerError(f"workspace {jpath} is malformed ({exc}); expected the fields of a topoviewer workspace")
    if head.get("has_images"):
        ws.images, ws.labels = _read_pictures(npath)
    return ws


def _read_pictures(npath: Path):
    """The pictures (and labels) of a workspace, each array's size checked from its header first."""
    from .positions import _open_npz, _read_key

    if not npath.is_file():
        raise TopoviewerError(f"workspace pictures {npath} not found; it belongs beside the workspace's .json")
    with _open_npz(npath) as z:
        if "images" not in z.files:
            raise TopoviewerError(f"{npath} holds no 'images' array; expected a topoviewer workspace's pictures")
        images = _read_key(z, "images", npath)
        labels = _read_key(z, "labels", npath) if "labels" in z.files else None
    return images, labels
