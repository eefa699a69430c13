"""Transfer to photographs: do the localizer's face units and face patch respond to real faces?

:func:`photo_transfer` locates the face-selective units and the face patch of each sheet on
the procedural localizer, then measures them on a photograph set with categories ``faces`` and
``non-faces`` (e.g. :func:`topoviewer.stimuli.lfw`). The photographs are never used to find
the units or the patch.
"""

from __future__ import annotations

import numpy as np

from .. import defaults
from ..errors import TopoviewerError
from .fmri import units_in_voxels, voxel_responses, t_maps
from .selectivity import dprime_maps, fraction_selective

__all__ = ["photo_transfer", "edge_share", "edge_profile", "lfw_validation", "patch_units", "patch_table",
           "patch_table_csv", "PATCH_TABLE_FIELDS"]


def edge_share(sheet, voxel_mask, ring_mm=1.0, voxel_mm=defaults.VOXEL_MM) -> float | None:
    """Share of the selected voxels whose centre lies within `ring_mm` of the sheet's border.

    Returns None when no voxel is selected.
    """
    mask = np.asarray(voxel_mask, bool)
    if not mask.any():
        return None
    return float((_border_distance(sheet, voxel_mm)[mask] < ring_mm).mean())


def edge_profile(sheet, voxel_mask, bin_mm=1.0, voxel_mm=defaults.VOXEL_MM) -> dict:
    """Where the selected voxels sit: their share per ``bin_mm`` band of distance from the border.

    Returns ``{"distance_mm": band centres, "share": of the selected voxels (None without any),
    "area_share": of all voxels (the chance level)}``.
    """
    border = _border_distance(sheet, voxel_mm)
    bands = np.floor(border / bin_mm).astype(int)
    n = int(bands.max()) + 1
    mask = np.asarray(voxel_mask, bool)
    area = np.bincount(bands.ravel(), minlength=n) / bands.size
    share = np.bincount(bands[mask], minlength=n) / mask.sum() if mask.any() else None
    return {"distance_mm": [float((k + 0.5) * bin_mm) for k in range(n)],
            "share": None if share is None else [float(v) for v in share],
            "area_share": [float(v) for v in area]}


def _border_distance(sheet, voxel_mm):
    """Distance (mm) of every voxel centre to the nearest sheet border: (rows, cols)."""
    grid = sheet.grid(voxel_mm)
    centres = grid.centres().reshape(grid.shape[0], grid.shape[1], 2)
    lo = np.asarray(sheet.origin_mm, float)
    hi = lo + np.asarray(sheet.extent_mm, float)
    return np.minimum(centres - lo, hi - centres).min(axis=-1)


def photo_transfer(model, localizer_stimuli, photo_stimuli, *, layer=None, category="faces",
                   negative="non-faces", threshold=defaults.DPRIME_THRESHOLD,
                   t_threshold=defaults.VOXEL_T_THRESHOLD, ring_mm=1.0, n_extreme=8,
                   responses=None, photo_responses=None, maps=None) -> dict:
    """Do the units and the patch that are face-selective on the localizer prefer real faces?

    Parameters
    ----------
    model : TopoModel
        Any model with sheets.
    localizer_stimuli : StimulusSet
        Defines the face units (d′ of `category` vs all other categories > `threshold`)
        and the face patch (simulated-fMRI voxels with Welch t > `t_threshold`, and the
        units inside them). Usually ``topoviewer.pipeline.default_stimuli(model)``.
    photo_stimuli : StimulusSet
        Photographs with categories `category` and `negative`, e.g.
        ``topoviewer.stimuli.lfw(size=model.input_size)``. Only measured, never used to
        select units.
    layer : str or sequence of str, optional
        Sheet name(s) or label(s); by default every sheet.
    category, negative : str
        The face category (in both sets) and the photographs' contrast category.
    threshold : float
        Unit d′ threshold for "face-selective" on the localizer.
    t_threshold : float
        Voxel t threshold of the localizer face patch.
    ring_mm : float
        Width of the border ring for the edge-crowding share.
    n_extreme : int
        How many most / least patch-driving photographs to list.
    responses, photo_responses : dict, optional
        Precomputed ``model.responses`` of the two sets (sheet name → (n_images, n_units)).
    maps : dict, optional
        Sheet name → :class:`topoviewer.pipeline.SheetMaps` of the localizer already computed
        (default smoothing); their d′ and voxel-t maps of `category` are used instead of
        being computed again. Sheets not in it are computed here.

    Returns
    -------
    dict
        Sheet name → a JSON-able dict with keys

        ``face_units``
            Number of localizer face-selective units.
        ``fraction_selective``
            Their fraction of the sheet's units.
        ``face_units_dprime``
            Mean photo d′ (`category` vs `negative`) of the face units (None if there are none).
        ``other_units_dprime``
            Mean photo d′ of all other units with a finite d′.
        ``dprime_gap``
            ``face_units_dprime - other_units_dprime``.
        ``patch_voxels``
            Number of localizer face voxels with t > `t_threshold` (all of them, not only
            the largest connected patch).
        ``patch_units``
            Units inside those voxels.
        ``patch_faces``, ``patch_non_faces``
            Mean response of the patch units to the photographed faces / non-faces.
        ``patch_ratio``
            ``patch_faces / patch_non_faces`` (None if the patch is empty or the
            denominator is not positive).
        ``edge_share``
            Share of the patch voxels within `ring_mm` of the border (None without a patch).
        ``edge_area_share``
            Share of all voxels within `ring_mm` of the border (the chance level).
        ``most_driving``, ``least_driving``
            Indices into `photo_stimuli` of the `n_extreme` photographs with the highest /
            lowest mean patch response (empty without a patch).
        ``patch_response``
            Mean patch response of every photograph (list, photo order; empty without a patch).

    Raises
    ------
    TopoviewerError
        If a category is missing from either set.
    """
    for stim, names in ((localizer_stimuli, (category,)), (photo_stimuli, (category, negative))):
        missing = [c for c in names if c not in stim.categories]
        if missing:
            raise TopoviewerError(f"{stim.name} has no categor{'y' if len(missing) == 1 else 'ies'} {missing}")
    if layer is None:
        sheets = list(model.sheets)
    else:
        sheets = [model.sheet(name) for name in ([layer] if isinstance(layer, str) else layer)]
    if responses is None:
        responses = model.responses(localizer_stimuli.images)
    if photo_responses is None:
        photo_responses = model.responses(photo_stimuli.images)
    keep = np.isin(photo_stimuli.labels, [photo_stimuli.categories.index(c) for c in (category, negative)])
    is_face = photo_stimuli.labels == photo_stimuli.categories.index(category)
    is_other = keep & ~is_face
    out = {}
    for sheet in sheets:
        r = np.asarray(responses[sheet.name], np.float64)
        p = np.asarray(photo_responses[sheet.name], np.float64)
        known = (maps or {}).get(sheet.name)
        if known is not None:
            dp_loc, vt = np.asarray(known.dprime[category]), np.asarray(known.voxel_t[category])
        else:
            dp_loc = dprime_maps(r, localizer_stimuli.labels, localizer_stimuli.categories)[category]
            vt = t_maps(voxel_responses(sheet, r), localizer_stimuli.labels, localizer_stimuli.categories)[category]
        face_units = dp_loc > threshold
        dp_photo = dprime_maps(p[keep], photo_stimuli.labels[keep], photo_stimuli.categories)[category]
        finite = np.isfinite(dp_photo)
        f_dp = _mean(dp_photo[face_units & finite])
        o_dp = _mean(dp_photo[~face_units & finite])
        voxels, in_patch = patch_units(sheet, vt, t_threshold)
        ring = edge_share(sheet, np.isfinite(vt), ring_mm)
        entry = {
            "face_units": int(face_units.sum()),
            "fraction_selective": float(fraction_selective(dp_loc, threshold)),
            "face_units_dprime": f_dp,
            "other_units_dprime": o_dp,
            "dprime_gap": None if f_dp is None or o_dp is None else f_dp - o_dp,
            "patch_voxels": int(voxels.sum()),
            "patch_units": int(in_patch.sum()),
            "patch_faces": None, "patch_non_faces": None, "patch_ratio": None,
            "edge_share": edge_share(sheet, voxels, ring_mm),
            "edge_area_share": ring,
            "most_driving": [], "least_driving": [], "patch_response": [],
        }
        if in_patch.any():
            per_photo = p[:, in_patch].mean(axis=1)
            faces, others = float(per_photo[is_face].mean()), float(per_photo[is_other].mean())
            order = np.argsort(-per_photo, kind="stable")
            order = order[keep[order]]
            entry.update(
                patch_faces=faces, patch_non_faces=others,
                patch_ratio=faces / others if others > 0 else None,
                most_driving=[int(i) for i in order[:n_extreme]],
                least_driving=[int(i) for i in order[::-1][:n_extreme]],
                patch_response=[float(v) for v in per_photo],
            )
        out[sheet.name] = entry
    return out


def patch_units(sheet, t_map, t_threshold=defaults.VOXEL_T_THRESHOLD, voxel_mm=defaults.VOXEL_MM):
    """A category's patch on a voxel t map: the voxels with t > `t_threshold` and the units inside them.

    Returns ``(voxels, units)``: (rows, cols) bool and (n_units,) bool (all False without a patch).
    """
    voxels = np.nan_to_num(np.asarray(t_map, np.float64), nan=-np.inf) > t_threshold
    units = units_in_voxels(sheet, voxels, voxel_mm) if voxels.any() else np.zeros(sheet.n_units, bool)
    return voxels, units


#: Columns of :func:`patch_table` (and its CSV).
PATCH_TABLE_FIELDS = ("image", "sheet", "category", "patch_units", "response", "localizer_category",
                      "localizer_others")


def patch_table(model, analysis, photo_responses, names, *, voxel_t=None,
                t_threshold=defaults.VOXEL_T_THRESHOLD, voxel_mm=defaults.VOXEL_MM) -> list:
    """Does each category's patch see these pictures? One row per (picture, sheet, category).

    Parameters
    ----------
    model : TopoModel
    analysis : Analysis
        The localizer analysis (:func:`topoviewer.pipeline.iter_analysis`): its responses
        define each category's patch (voxel t > `t_threshold`, :func:`patch_units`) and
        the patch's localizer means.
    photo_responses : dict
        Sheet name → (n_pictures, n_units) responses to the pictures.
    names : sequence of str
        One name per picture.
    voxel_t : dict, optional
        ``{sheet: {category: t map}}`` to use instead of the analysis's (e.g. at another FWHM).
    t_threshold, voxel_mm : float

    Returns
    -------
    list of dict
        Keys :data:`PATCH_TABLE_FIELDS`: ``patch_units`` (units inside the patch), ``response``
        (mean response of the patch units to the picture), ``localizer_category`` and
        ``localizer_others`` (their mean response to the localizer images of the category /
        of every other category). The three means are None where the category has no patch.
    """
    names = list(names)
    labels = np.asarray(analysis.labels)
    rows = []
    for sheet_name, maps in analysis.sheets.items():
        sheet = model.sheet(sheet_name)
        p = np.asarray(photo_responses[sheet_name], np.float64)
        if p.shape[0] != len(names):
            raise TopoviewerError(f"{len(names)} picture names for {p.shape[0]} responses of {sheet_name}")
        r = np.asarray(analysis.responses[sheet_name], np.float64)
        for ci, category in enumerate(analysis.categories):
            t = (voxel_t or {}).get(sheet_name, {}).get(category, maps.voxel_t[category])
            _, inside = patch_units(sheet, t, t_threshold, voxel_mm)
            n = int(inside.sum())
            own = float(r[labels == ci][:, inside].mean()) if n else None
            rest = float(r[labels != ci][:, inside].mean()) if n else None
            per_picture = p[:, inside].mean(axis=1) if n else [None] * len(names)
            for name, value in zip(names, per_picture, strict=True):
                rows.append({"image": name, "sheet": sheet_name, "category": category, "patch_units": n,
                             "response": None if value is None else float(value),
                             "localizer_category": own, "localizer_others": rest})
    return rows


def patch_table_csv(rows) -> str:
    """:func:`patch_table` rows as CSV text (empty cells where a category has no patch)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=PATCH_TABLE_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: "" if row.get(k) is None else row[k] for k in PATCH_TABLE_FIELDS})
    return buf.getvalue()


def _mean(values) -> float | None:
    return float(np.mean(values)) if len(values) else None


#: Keys of :func:`photo_transfer` kept in a model's ``meta["validation"]["lfw"]``.
VALIDATION_KEYS = ("face_units", "fraction_selective", "face_units_dprime", "other_units_dprime", "dprime_gap",
                   "patch_voxels", "patch_faces", "patch_non_faces", "patch_ratio", "edge_share")


def lfw_validation(model, localizer_stimuli=None) -> dict:
    """The LFW summary stored in a model file's metadata (``meta["validation"]["lfw"]``).

    Runs :func:`photo_transfer` with the default localizer and
    :func:`topoviewer.stimuli.lfw` at the model's input size and keeps
    :data:`VALIDATION_KEYS` per sheet (rounded to 4 decimals).
    """
    from ..pipeline import default_stimuli
    from ..stimuli import lfw

    localizer_stimuli = default_stimuli(model) if localizer_stimuli is None else localizer_stimuli
    photos = lfw(size=max(32, model.input_size))
    result = photo_transfer(model, localizer_stimuli, photos)
    return {
        "set": photos.name, "localizer": localizer_stimuli.name,
        "sheets": {name: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in entry.items()
                          if k in VALIDATION_KEYS} for name, entry in result.items()},
    }


def provenance(meta: dict) -> tuple[str | None, str | None]:
    """(training data, LFW validation) lines for a model's metadata, or None where absent.

    E.g. ``("procedural diet v2: …", "validated on LFW photographs (lfw(size=32)): fc6 face units
    d′ +0.62 (others −0.30), face patch faces/non-faces ×1.8; fc7 …")``. Used by ``topoviewer
    info`` and the GUI's Model dock.
    """
    data = meta.get("training_data") or None
    lfw = ((meta.get("validation") or {}).get("lfw")) or {}
    parts = [f"{name} face units d′ {v['face_units_dprime']:+.2f} (others {v['other_units_dprime']:+.2f}), "
             f"face patch faces/non-faces ×{v['patch_ratio']:.2f}"
             for name, v in (lfw.get("sheets") or {}).items()
             if v.get("face_units_dprime") is not None and v.get("other_units_dprime") is not None
             and v.get("patch_ratio") is not None]
    valid = f"validated on LFW photographs ({lfw.get('set', 'lfw')}): " + "; ".join(parts) if parts else None
    return data, valid
