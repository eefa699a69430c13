"""A user cache of analyses, so that a model opened again shows its maps at once.

The analysis of a model file on the default localizer takes seconds on a CPU and is the same
every time. :func:`cached_analysis` keeps it in the user's cache directory
(:func:`cache_dir`), one ``.npz`` per entry (no pickle), written atomically. The entry's key
is the SHA-256 of the model file's bytes, the analysis options, the stimulus set's
description and a fingerprint of the analysis code (the source of the modules that compute
it), so a changed file, setting or topoviewer never meets a stale entry. An unreadable entry
is recomputed and replaced; a cache that cannot be written only costs the time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from .errors import TopoviewerError

__all__ = ["cache_dir", "cached_analysis", "cached_preview", "analysis_key"]

#: Modules whose source decides an analysis's numbers (their bytes are part of every key).
_CODE = ("analysis", "stimuli", "pipeline.py", "sheet.py", "model.py", "families", "defaults.py")


def cache_dir() -> Path:
    """``$TOPOVIEWER_CACHE_DIR``, else the platform's user cache folder + ``topoviewer``."""
    if os.environ.get("TOPOVIEWER_CACHE_DIR"):
        return Path(os.environ["TOPOVIEWER_CACHE_DIR"]).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "topoviewer"


def _code_hash() -> str:
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in _CODE:
        p = root / name
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def analysis_key(model_path, stimuli_desc: str, options: dict) -> str:
    """The cache key of an analysis: model bytes, stimulus set, options and analysis code."""
    from .io import file_sha256

    parts = {"model": file_sha256(model_path), "stimuli": stimuli_desc, "options": options, "code": _code_hash()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def cached_analysis(model, model_path, stimuli_desc: str, make_stimuli, **options):
    """``(analysis, stimuli)`` of ``model`` (loaded from ``model_path``), from the cache when present.

    Parameters
    ----------
    model : TopoModel
        The model, loaded from ``model_path``.
    model_path : path
        Its file: the key holds the hash of its bytes.
    stimuli_desc : str
        What ``make_stimuli()`` returns, fully (e.g. ``"localizer(size=32, seed=1234)"``): part of the key.
    make_stimuli : callable() -> StimulusSet
        Called only on a miss.
    **options
        Options of :func:`topoviewer.pipeline.analyze` (part of the key).
    """
    from .pipeline import analyze

    path = _entry(model_path, stimuli_desc, options)
    hit = _read(path, model.sheets)
    if hit is not None:
        return hit
    stimuli = make_stimuli()
    analysis = analyze(model, stimuli, **options)
    try:
        _write(path, analysis, stimuli)
    except (OSError, TopoviewerError):  # a cache that cannot be written only costs time
        pass
    return analysis, stimuli


def cached_preview(model_path, sheets, stimuli_desc: str, **options):
    """The d′ maps of the cached analysis of the model in ``model_path``, or None if there is none.

    Needs only the model's sheets (:func:`topoviewer.io.read_sheets`), not the model, and imports
    neither torch nor the analysis code: a viewer shows these maps while the model is still loading.
    The entry's stored display rasters (:meth:`Sheet.nearest_map`) are handed to ``sheets``, so that
    drawing them needs no KD-tree. Same key as :func:`cached_analysis` with the same arguments.

    Returns
    -------
    (categories, dprime) or None
        ``dprime[sheet][category]``: one value per unit.
    """
    path = _entry(model_path, stimuli_desc, options)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            cats = meta["categories"]
            dprime = {name: {c: z[f"dprime/{name}/{c}"] for c in cats} for name in meta["sheets"]}
            for s in sheets:
                if f"nearest/{s.name}" in z.files:
                    mask = z[f"nearest_mask/{s.name}"] if f"nearest_mask/{s.name}" in z.files else None
                    s.set_nearest_map(s.default_pixel_mm(), z[f"nearest/{s.name}"], mask)
    except Exception:  # noqa: BLE001 - damaged or foreign: no preview (the model's own load recomputes it)
        return None
    return cats, dprime


def _entry(model_path, stimuli_desc, options) -> Path:
    return cache_dir() / f"analysis-{analysis_key(model_path, stimuli_desc, options)}.npz"


def _write(path, analysis, stimuli):
    from .io import atomic_write

    arrays = {"stimuli/images": stimuli.images, "stimuli/labels": stimuli.labels, "labels": analysis.labels}
    sheets = {}
    for name, m in analysis.sheets.items():
        arrays[f"responses/{name}"] = analysis.responses[name]
        for c in analysis.categories:
            arrays[f"dprime/{name}/{c}"] = m.dprime[c]
            arrays[f"voxel_t/{name}/{c}"] = m.voxel_t[c]
        sheets[name] = {"summary": m.summary, "thresholds": m.thresholds}
        index, mask = m.sheet.nearest_map(m.sheet.default_pixel_mm())  # the display raster (cached_preview)
        arrays[f"nearest/{name}"] = index.astype(np.int32)
        if mask is not None:
            arrays[f"nearest_mask/{name}"] = mask
    meta = {"model_name": analysis.model_name, "stimuli_name": analysis.stimuli_name,
            "categories": list(analysis.categories), "stimuli": {"name": stimuli.name,
                                                                 "categories": list(stimuli.categories)},
            "sheets": sheets}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    atomic_write(path, write)


def _read(path, sheets):
    """The cached ``(analysis, stimuli)`` of a model with these sheets, or None when absent or unreadable."""
    from .pipeline import Analysis, SheetMaps
    from .stimuli import StimulusSet

    if not path.exists():
        return None
    by_name = {s.name: s for s in sheets}
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            cats = meta["categories"]
            stimuli = StimulusSet(z["stimuli/images"], z["stimuli/labels"], meta["stimuli"]["categories"],
                                  meta["stimuli"]["name"])
            analysis = Analysis(meta["model_name"], meta["stimuli_name"], cats, z["labels"], {})
            for name, info in meta["sheets"].items():
                analysis.responses[name] = z[f"responses/{name}"]
                analysis.sheets[name] = SheetMaps(
                    by_name[name], {c: z[f"dprime/{name}/{c}"] for c in cats},
                    {c: z[f"voxel_t/{name}/{c}"] for c in cats}, info["summary"], info["thresholds"])
    except Exception:  # noqa: BLE001 - damaged or foreign: recomputed and replaced
        return None
    return analysis, stimuli
