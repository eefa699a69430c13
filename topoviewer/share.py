"""One self-contained HTML page of a model's sheets: open it in any browser, hover, switch, click.

:func:`share_page` turns an :class:`~topoviewer.pipeline.Analysis` into a single file that needs
no server, no network and no Python: the data are inlined as base64 typed arrays in a JSON block
and drawn by a small plain-JavaScript program on 2-D canvases (``share.html`` next to this
module). Per sheet the page shows what :func:`topoviewer.figures.map_figure` draws — d′ map,
voxel t-map with the patch outline, purity rings and the purity curve — for a category chosen
in a selector, with the colormaps and limits of :mod:`topoviewer.style`, scale bars from
:func:`topoviewer.figures.nice_scale_length` and a hover read-out like the napari plugin's.

Click-to-stimulate needs the network, so it is **precomputed**: every stimulated sheet (each
sheet with a next sheet) is stimulated by :class:`~topoviewer.pipeline.Stimulator` at the centres
of a square grid of sites (every ``site_step_mm``, default 0.5 mm, at the default radius and
decay); the page shows the site nearest a click: the next sheet's propagated map and the
read-out of its patch (raw, baseline and Δ). The propagated maps are stored as 8-bit values
scaled to each map's own maximum (the colour limits the plugin uses for them), the read-out
numbers as float32. Where the grid would not fit :data:`SITE_BUDGET_BYTES`, the step grows.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np

from . import defaults
from .errors import TopoviewerError
from .style import CMAP, map_limits

__all__ = ["MAX_IMAGES", "SITE_BUDGET_BYTES", "check_suffix", "describe_sites", "model_share", "read_images",
           "share_data", "share_html", "share_page"]

#: The page's program and layout; ``/*DATA*/`` is replaced by the JSON of :func:`share_data`.
TEMPLATE = Path(__file__).with_name("share.html")

#: Largest total of precomputed propagated maps (bytes before base64): keeps a page ≤ 20 MB.
SITE_BUDGET_BYTES = 12_000_000

#: Most user images (``--images``) a page carries.
MAX_IMAGES = 32

#: Colour of NaN pixels (outside the sheet), as in the figures (matplotlib grey "0.88").
BAD_RGB = (224, 224, 224)


def _b64(array, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def _lut(name) -> str:
    import matplotlib

    rgb = matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3]
    return _b64(np.round(rgb * 255), np.uint8)


def _quantise(values, lo, hi) -> np.ndarray:
    """Values → uint8 codes 0..255 over [lo, hi] (what the page turns back into colours and numbers)."""
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip(np.round((np.asarray(values, np.float64) - lo) * scale), 0, 255).astype(np.uint8)


def _finite_or_none(v):
    return float(v) if np.isfinite(v) else None


def _index_raster(sheet):
    """The nearest-unit index of every display pixel (−1 outside the sheet): rasters are drawn as ``values[index]``."""
    px = sheet.default_pixel_mm()
    index = sheet.rasterise(np.arange(sheet.n_units, dtype=np.float64), px)
    codes = np.where(np.isfinite(index), index, -1).astype(np.int32)
    return {"rows": int(codes.shape[0]), "cols": int(codes.shape[1]), "pixel": float(px), "index": _b64(codes, np.int32)}


def _category_block(sheet, maps, category, t_threshold):
    from .figures import monkey_reference_purity
    from .analysis import fraction_selective

    dp = np.asarray(maps.dprime[category], np.float64)
    thr = float(maps.thresholds.get(category, defaults.DPRIME_THRESHOLD))
    block = {"dprime": _b64(dp, np.float32), "dprime_limits": list(map_limits("dprime", dp, threshold=thr)),
             "threshold": thr, "fraction": float(fraction_selective(dp, thr))}
    t_map = maps.voxel_t.get(category)
    if t_map is not None:
        t_map = np.asarray(t_map, np.float64)
        block["t"] = _b64(t_map, np.float32)
        block["t_limits"] = list(map_limits("voxel_t", t_map, threshold=t_threshold))
    try:
        curve = maps.purity(category, thr)
    except TopoviewerError as exc:
        block["purity_error"] = str(exc)
        return block
    block["purity"] = {"centre": [float(v) for v in curve.centre], "bin_mm": float(curve.bin_mm),
                       "values": [_finite_or_none(v) for v in curve.purity]}
    if sheet.unit == "mm":
        d = np.linspace(0.0, max(6.0, len(curve.purity) * curve.bin_mm), 200)
        block["reference"] = {"distance_mm": d.round(4).tolist(), "purity": monkey_reference_purity(d).round(4).tolist()}
    return block


def _site_step(model, names, step_mm):
    """The smallest step ≥ ``step_mm`` whose grids of sites fit :data:`SITE_BUDGET_BYTES` (×1.25 per try)."""
    def total(step):
        return sum(math.prod(model.sheet(n).grid(step).shape) * model.sheet(model.next_sheet(n)).n_units
                   for n in names)

    step = float(step_mm)
    while total(step) > SITE_BUDGET_BYTES:
        if all(model.sheet(n).grid(step).shape == (1, 1) for n in names):
            raise TopoviewerError(f"the next sheets are too large to precompute stimulation: one site each already "
                                  f"takes {total(step):,} bytes (at most {SITE_BUDGET_BYTES:,})")
        step *= 1.25
    return step


def _stimulation_block(stim, step_mm, radius_mm):
    sheet = stim.sheet
    grid = sheet.grid(step_mm)
    sites = grid.centres()
    n_next = stim.next_sheet.n_units
    codes = np.empty((len(sites), n_next), np.uint8)
    top = np.empty(len(sites))
    numbers = {k: np.empty(len(sites)) for k in ("next_patch_mean", "next_patch_delta", "next_mean")}
    units = np.empty(len(sites), np.int32)
    clipped = np.empty(len(sites), np.uint8)
    for i, site in enumerate(sites):
        r = stim.stimulate(tuple(site), radius_mm=radius_mm, site="grid")
        lo, top[i] = map_limits("propagated", r.propagated)
        codes[i] = _quantise(r.propagated, lo, top[i])
        for k in numbers:
            numbers[k][i] = getattr(r, k)
        units[i], clipped[i] = r.stimulated_units, r.clipped
    return {
        "layer": stim.layer, "next": stim.next_layer, "category": stim.category,
        "unit": "mm" if sheet.unit == "mm" else "cells",
        "radius_mm": float(radius_mm), "sigma_mm": defaults.STIM_SIGMA_MM, "decay": defaults.STIM_DECAY,
        "step_mm": float(step_mm), "rows": int(grid.shape[0]), "cols": int(grid.shape[1]),
        "baseline": float(r.baseline), "patch_units": int(len(stim.next_patch_units)), "patch_rule": stim.patch_rule,
        "maps": _b64(codes, np.uint8), "map_max": _b64(top, np.float32), "units": _b64(units, np.int32),
        "clipped": _b64(clipped, np.uint8), **{k: _b64(v, np.float32) for k, v in numbers.items()},
    }


def share_data(analysis, model, *, stimulators=None, stimuli=None, images=None, image_names=None, category=None,
               site_step_mm=0.5, radius_mm=defaults.STIM_RADIUS_MM, t_threshold=defaults.VOXEL_T_THRESHOLD,
               voxel_mm=defaults.VOXEL_MM, fwhm_mm=defaults.FWHM_MM) -> dict:
    """Everything the page draws, as a JSON-able dict (arrays as little-endian base64).

    Parameters
    ----------
    analysis : pipeline.Analysis
        Its voxel t maps must be on ``voxel_mm`` voxels smoothed with ``fwhm_mm``.
    model : TopoModel
    stimulators : dict, optional
        Sheet name → prepared :class:`~topoviewer.pipeline.Stimulator` (the plugin's); the
        missing ones are built from ``stimuli`` and the analysis's responses.
    stimuli : StimulusSet, optional
        The stimuli of ``analysis`` (default: the procedural localizer, rerun).
    images : (n, H, W) float array in [0, 1], optional
        User images whose activation maps the page offers; ``image_names`` names them.
    category : str, optional
        The category shown first (default: faces, else the first).
    site_step_mm : float
        Spacing of the precomputed stimulation sites (grows if the maps would not fit the budget).
    """
    from .figures import nice_scale_length
    from .pipeline import Stimulator

    if not (np.isfinite(site_step_mm) and site_step_mm > 0):
        raise TopoviewerError(f"site step must be a positive number of mm, got {site_step_mm}")
    categories = list(analysis.categories)
    first = category or ("faces" if "faces" in categories else categories[0])
    if first not in categories:
        raise TopoviewerError(f"category {first!r} is not in the analysis ({', '.join(categories)})")
    names = [n for n in model.sheet_names if n in analysis.sheets]
    if not names:
        raise TopoviewerError("the analysis holds no sheet to share")
    if images is not None and len(images) > MAX_IMAGES:
        raise TopoviewerError(f"a page carries at most {MAX_IMAGES} images, got {len(images)}")
    activations = model.responses(images, names) if images is not None and len(images) else {}

    sheets = []
    for name in names:
        sheet, maps = model.sheet(name), analysis.sheets[name]
        block = {
            "name": name, "title": sheet.title, "unit": "mm" if sheet.unit == "mm" else "cells",
            "origin": list(sheet.origin_mm), "extent": list(sheet.extent_mm), "n_units": sheet.n_units,
            "positions": _b64(sheet.positions, np.float32), "raster": _index_raster(sheet),
            "scale_bar": nice_scale_length(min(sheet.extent_mm)),
            "voxel": dict(zip(("rows", "cols"), (int(v) for v in sheet.grid(voxel_mm).shape)), pixel=float(voxel_mm)),
            "categories": {c: _category_block(sheet, maps, c, t_threshold) for c in categories},
        }
        if name in activations:
            acts = []
            for a in activations[name]:
                lo, hi = map_limits("activation", a)
                acts.append({"codes": _b64(_quantise(a, lo, hi), np.uint8), "limits": [lo, hi]})
            block["activations"] = acts
        sheets.append(block)

    stimulated = [n for n in names if model.next_sheet(n) in analysis.sheets]
    step = _site_step(model, stimulated, site_step_mm)
    stimulators = dict(stimulators or {})
    stim_category = "faces" if "faces" in categories else first
    blocks = []
    for name in stimulated:
        if name not in stimulators:
            kw = dict(stimuli=stimuli, responses=analysis.responses) if stimuli is not None else {}
            stimulators[name] = Stimulator(model, name, category=stim_category, threshold=t_threshold,
                                           fwhm_mm=fwhm_mm, voxel_mm=voxel_mm, **kw)
        blocks.append(_stimulation_block(stimulators[name], step, radius_mm))

    shown = []
    if images is not None:
        for i, img in enumerate(images):
            g = np.asarray(img, np.float64)
            shown.append({"name": str(image_names[i]) if image_names is not None else f"image {i + 1}",
                          "size": [int(g.shape[1]), int(g.shape[0])],
                          "pixels": _b64(np.round(np.clip(g[::-1], 0, 1) * 255), np.uint8)})
    return {
        "model": model.name, "stimuli": analysis.stimuli_name, "categories": categories, "category": first,
        "t_threshold": float(t_threshold), "fwhm_mm": float(fwhm_mm), "voxel_mm": float(voxel_mm),
        "cmaps": {k: _lut(CMAP[k]) for k in ("dprime", "voxel_t", "purity", "propagated", "activation")},
        "bad_rgb": list(BAD_RGB), "sheets": sheets, "stimulation": blocks, "images": shown,
        "precomputed": describe_sites(blocks),
    }


def share_html(data: dict) -> str:
    """The page: :data:`TEMPLATE` with ``data`` inlined (``</`` escaped, so no string can end the script)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return TEMPLATE.read_text(encoding="utf-8").replace("/*DATA*/", text, 1)


def check_suffix(out) -> Path:
    """``out`` as a Path, or TopoviewerError unless it ends in .html (checked before any slow work)."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise TopoviewerError(f"a shared page is an HTML file: expected a name ending in .html, got {out.name!r}")
    return out


def share_page(analysis, model, out, **options) -> tuple[Path, str]:
    """Write the page of ``analysis`` to ``out`` (``.html``), atomically; ``options`` go to :func:`share_data`.

    Returns the path and the line saying what was precomputed (:func:`describe_sites`).
    """
    from .io import atomic_write

    out = check_suffix(out)
    data = share_data(analysis, model, **options)
    html = share_html(data)
    return atomic_write(out, lambda tmp: Path(tmp).write_text(html, encoding="utf-8")), data["precomputed"]


def read_images(folder, size: int) -> tuple[np.ndarray, list]:
    """The pictures directly in ``folder`` (``--images``) as (n, size, size) grey images, and their file names."""
    from .stimuli.files import IMAGE_SUFFIXES, _image_files, load_images

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise TopoviewerError(f"--images expects a folder of pictures, but {folder} is "
                              f"{'a file' if folder.exists() else 'missing'}")
    try:
        files = _image_files(folder)
    except TopoviewerError:
        raise TopoviewerError(f"--images: {folder} holds no pictures (expected files ending in "
                              f"{', '.join(IMAGE_SUFFIXES)})") from None
    if len(files) > MAX_IMAGES:
        raise TopoviewerError(f"--images: a page carries at most {MAX_IMAGES} images, {folder} holds {len(files)}")
    return load_images(files, size), [f.name for f in files]


def model_share(model, stimuli=None, out="topoviewer.html", *, images=None, image_names=None, category=None,
                site_step_mm=0.5, **options) -> tuple[Path, str]:
    """Analyse ``model`` on ``stimuli`` (default: the procedural localizer) and write :func:`share_page`.

    This is what ``topoviewer share MODEL`` runs. ``images`` (from :func:`read_images`) are pictures
    whose activation maps the page offers; ``options`` go to :func:`topoviewer.pipeline.analyze`.
    Returns the path and the line saying what was precomputed.
    """
    from .pipeline import analyze, default_stimuli

    check_suffix(out)
    stimuli = default_stimuli(model) if stimuli is None else stimuli
    analysis = analyze(model, stimuli, **options)
    extra = {k: options[k] for k in ("fwhm_mm", "voxel_mm") if k in options}
    return share_page(analysis, model, out, stimuli=stimuli, images=images, image_names=image_names,
                      category=category, site_step_mm=site_step_mm, **extra)


def describe_sites(blocks) -> str:
    """One line saying what was precomputed for click-to-stimulate (shown on the page, printed by the CLI)."""
    parts = [f"{s['rows'] * s['cols']} sites of {s['layer']} every {s['step_mm']:g} {s['unit']} → {s['next']}"
             for s in blocks]
    if not parts:
        return "no stimulation precomputed (no sheet has a next sheet)"
    s = blocks[0]
    u = s["unit"]
    return f"precomputed {', '.join(parts)} (radius {s['radius_mm']:g} {u}, σ {s['sigma_mm']:g} {u}, {s['decay']})"

