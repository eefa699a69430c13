"""The analysis suites of ``topoviewer analyze --suite`` and ``topoviewer match``: each runs a
model on its stimulus set and returns a JSON-ready dict (docs/science.md, "Identity, viewpoint,
lesions and neurons").

- ``invariance``: identity tuning width, head-orientation tuning depth and the population
  identity / view / mirror indices of every sheet on ``face-views``, over all units and over
  the sheet's face patch (found on the localizer).
- ``identity``: identity-selective, SI and MI units of every sheet on ``face-identities`` and
  cross-validated identity decoding from all / selective / non-selective / SI / MI units, on
  the images and on their transforms (units chosen on the untransformed images).
- ``lesion``: per-class accuracy of the model's classifier with the face patch of each sheet
  silenced, against size-matched random lesions (regions or units), on the localizer.
"""

from __future__ import annotations

import numpy as np

from . import defaults
from .errors import TopoviewerError

__all__ = ["SUITES", "SUITE_STIMULI", "face_patch", "identity_suite", "invariance_suite", "lesion_suite",
           "load_neural", "match_curves", "match_suite", "run_suite", "suite_curves", "suite_table"]

SUITES = ("invariance", "identity", "lesion")
#: The stimulus set each suite runs on unless it is given one (built-in names of ``--stimuli``).
SUITE_STIMULI = {"invariance": "face-views", "identity": "face-identities", "lesion": "localizer"}


def run_suite(suite: str, model, stimuli=None, *, stimuli_seed: int = 1234, folds: int = 5, seed: int = 0,
              n_random: int = 10, control: str = "region", decode_identities: int = 0, units=None,
              identities: int = 50, per_identity: int = 10, transforms=("mooney", "invert")) -> dict:
    """Run the suite named `suite` (one of :data:`SUITES`) with its options; the CLI and the GUI call this.

    Parameters
    ----------
    suite : str
    model : TopoModel
    stimuli : StimulusSet, optional
        Default: the suite's set of :data:`SUITE_STIMULI` at the model's input size, drawn with `stimuli_seed`.
    stimuli_seed : int
        Seed of the default set and of the localizer the invariance suite finds face patches on.
    folds, seed : int
        Cross-validation folds (identity; lesion decoding) and seed of the folds or of the random lesions.
    n_random : int
        Size-matched random lesions (lesion).
    control : {"region", "units"}
        Random lesions: contiguous regions or random units (lesion).
    decode_identities : int
        Lesion: also decode this many ``face-identities`` (``max(10, folds)`` images each) from the
        last sheet with each patch silenced (0: off).
    units : dict, optional
        Lesion: the units to silence, ``{sheet: indices or mask}`` (e.g. a drawn region,
        :func:`topoviewer.analysis.lesion.region_units`), instead of each sheet's face patch.
    identities, per_identity : int
        Identity: the size of the default ``face-identities`` set.
    transforms : sequence of str
        Identity: the transforms the decoding generalises to
        (:data:`topoviewer.stimuli.faces.TRANSFORMS`).
    """
    from .pipeline import default_stimuli
    from .stimuli.faces import face_identities, face_views

    if suite not in SUITES:
        raise TopoviewerError(f"a suite is one of {', '.join(SUITES)}, got {suite!r}")
    size = max(32, model.input_size)
    if stimuli is None:
        stimuli = {"invariance": lambda: face_views(size=size, seed=stimuli_seed),
                   "identity": lambda: face_identities(size=size, identities=identities, per_identity=per_identity,
                                                       seed=stimuli_seed),
                   "lesion": lambda: default_stimuli(model, seed=stimuli_seed)}[suite]()
    if suite == "invariance":
        return invariance_suite(model, stimuli, localizer=default_stimuli(model, seed=stimuli_seed))
    if suite == "identity":
        return identity_suite(model, stimuli, transforms=tuple(transforms), folds=folds, seed=seed)
    identities = None
    if decode_identities:
        identities = face_identities(size=model.input_size, identities=decode_identities,
                                     per_identity=max(10, folds), seed=stimuli_seed)
    return lesion_suite(model, stimuli, n_random=n_random, seed=seed, control=control, identities=identities,
                        folds=folds, units=units)


def face_patch(model, sheet, responses, stimuli, category: str = "faces"):
    """The units within 3 mm of the `category` d′ peak of `sheet`: ``(unit indices, peak (x, y) mm)``."""
    from .analysis import dprime_maps, patch_units, peak_point

    if category not in stimuli.categories:
        raise TopoviewerError(f"a {category} patch needs {category!r} among the stimuli's categories "
                              f"({', '.join(stimuli.categories)})")
    s = model.sheet(sheet)
    peak = peak_point(s, dprime_maps(responses, stimuli.labels, stimuli.categories)[category])
    return np.flatnonzero(patch_units(s, peak, defaults.PATCH_RADIUS_MM)), peak


def invariance_suite(model, stimuli, localizer=None) -> dict:
    """Viewpoint invariance per sheet on a :func:`~topoviewer.stimuli.faces.face_views` set.

    With a `localizer`, each sheet's face-patch units (:func:`face_patch`) are also measured on
    their own, as the TDANN paper measures them.
    """
    from .analysis.identity import view_invariance
    from .stimuli.faces import FACE_VIEW_YAWS, mirror_views, view_index

    view = view_index(stimuli)
    resp = model.responses(stimuli.images)
    loc = model.responses(localizer.images) if localizer is not None else {}
    sheets = {}
    for name, r in resp.items():
        sheets[name] = view_invariance(r, stimuli.labels, view, FACE_VIEW_YAWS, mirror_views()).summary()
        if localizer is not None:
            units, _ = face_patch(model, name, loc[name], localizer)
            sheets[name]["face_patch"] = view_invariance(r[:, units], stimuli.labels, view, FACE_VIEW_YAWS,
                                                         mirror_views()).summary()
    return {"suite": "invariance", "model": model.name, "stimuli": stimuli.name,
            "localizer": None if localizer is None else localizer.name, "sheets": sheets}


def identity_suite(model, stimuli, transforms=("mooney", "invert"), folds: int = 5, seed: int = 0) -> dict:
    """Identity-selective units and identity decoding per sheet (after the VGG-16 identity-coding study)."""
    from .analysis.identity import decode, identity_centroids, identity_units, region_coding
    from .stimuli.faces import transform

    sets = {"original": stimuli, **{k: transform(stimuli, k) for k in transforms}}
    resp = {k: model.responses(s.images) for k, s in sets.items()}
    sheets = {}
    for name in model.sheet_names:
        units = identity_units(resp["original"][name], stimuli.labels)
        subsets = {"all": None, "selective": units.selective, "non_selective": ~units.selective,
                   "single_identity": units.single, "multiple_identity": units.multiple}
        decoding = {}
        for k, r in resp.items():
            done = {}  # a subset equal to an earlier one (e.g. every unit selective) is decoded once
            for sub, m in subsets.items():
                idx = None if m is None or m.all() else np.flatnonzero(m)
                key = None if idx is None else idx.tobytes()
                if key not in done:
                    done[key] = decode(r[name], stimuli.labels, idx, folds=folds, seed=seed).summary()
                decoding.setdefault(k, {})[sub] = dict(done[key])
        sheets[name] = {
            **units.summary(),
            # region-based feature coding in the sheet's own face feature space
            "region_coding": region_coding(units, identity_centroids(resp["original"][name], stimuli.labels),
                                           seed=seed).summary(),
            "decoding": decoding,
        }
    return {"suite": "identity", "model": model.name, "stimuli": stimuli.name, "transforms": list(transforms),
            "folds": folds, "sheets": sheets}


def lesion_suite(model, stimuli, category: str = "faces", n_random: int = 10, seed: int = 0,
                 control: str = "region", identities=None, folds: int = 5, n_random_decoding: int = 3,
                 units=None) -> dict:
    """Silence each sheet's `category` patch (units within 3 mm of the d′ peak); per-class accuracy
    against `n_random` size-matched random lesions (`control`: random regions or random units).

    With `units` (``{sheet: unit indices or mask}``), those units of those sheets are silenced
    instead of the face patches (one sheet at a time), and the result's sheets are those.

    With `identities` (a labelled set, e.g. ``face-identities``), also the cross-validated decoding of
    its labels from the last sheet with each patch silenced, against `n_random_decoding` random
    lesions (:func:`topoviewer.analysis.lesion.lesion_decoding`).
    """
    from .analysis.lesion import class_indices, lesion_decoding, lesion_effect

    class_indices(model, stimuli.categories)
    regions = None if units is None else {model.sheet(k).name: v for k, v in units.items()}
    resp = model.responses(stimuli.images) if regions is None else {n: None for n in model.sheet_names}
    intact = None  # the intact model's identity decoding: the same for every lesioned sheet
    if identities is not None:
        from .analysis.identity import decode

        last = model.sheet_names[-1]
        intact = decode(model.responses(identities.images, sheets=[last])[last], identities.labels, folds=folds,
                        seed=seed)
    sheets = {}
    for name, r in resp.items():
        if regions is None:
            lesioned, peak = face_patch(model, name, r, stimuli, category)
            sheets[name] = {"patch_centre_mm": [float(v) for v in peak], "radius_mm": defaults.PATCH_RADIUS_MM}
        elif name in regions:
            lesioned, sheets[name] = regions[name], {}
        else:
            continue
        effect = lesion_effect(model, name, lesioned, stimuli, n_random=n_random, seed=seed, control=control)
        sheets[name].update(effect.summary())
        if identities is not None:
            sheets[name]["decoding"] = lesion_decoding(model, name, lesioned, identities, n_random=n_random_decoding,
                                                       seed=seed, control=control, folds=folds,
                                                       intact=intact).summary()
    return {"suite": "lesion", "model": model.name, "stimuli": stimuli.name,
            "category": category if units is None else "drawn region", "sheets": sheets,
            **({"identities": identities.name} if identities is not None else {})}


def suite_table(result: dict) -> tuple:
    """The summary numbers of a suite's `result` as a table: ``(columns, rows)``.

    One row per sheet (invariance: and one per sheet's face patch; lesion: one per sheet and
    class); cells are str, int, float or None (not computable).
    """
    suite, rows = result["suite"], []
    if suite == "invariance":
        columns = ["sheet", "units", "identity width", "orientation depth SD", "identity index", "view index",
                   "mirror index"]
        for name, s in result["sheets"].items():
            for label, v in ((name, s), (f"{name} face patch", s.get("face_patch"))):
                if v is not None:
                    pop = v["population"]
                    rows.append([label, v["units"], v["identity_width_mean"], v["orientation_depth_sd"],
                                 pop["identity"], pop["view"], pop["mirror"]])
    elif suite == "identity":
        columns = ["sheet", "units", "selective", "SI", "MI", "decoding all", "decoding selective",
                   "decoding non-selective"]
        for name, s in result["sheets"].items():
            dec = s["decoding"]["original"]
            rows.append([name, s["units"], s["selective"], s["single_identity"], s["multiple_identity"],
                         dec["all"]["accuracy"], dec["selective"]["accuracy"], dec["non_selective"]["accuracy"]])
    else:
        columns = ["sheet", "class", "units", "before", "after", "random", "p"]
        for name, s in result["sheets"].items():
            for c, v in s["categories"].items():
                rows.append([name, c, s["units"], v["before"], v["after"], v["random_mean"], v["p"]])
    return columns, rows


def suite_curves(result: dict) -> tuple:
    """Per-sheet numbers of a suite's `result` along the hierarchy: ``(sheets, {label: values})``.

    `values` has one float (or None: not computable) per sheet, in network order.
    invariance: the population identity, view and mirror indices over all units and over each
    sheet's face patch; identity: the share of identity-selective units and the identity
    decoding accuracy from all / selective / non-selective units (untransformed images); lesion:
    the identity decoding from the read-out sheet with each sheet's patch silenced, when the
    suite decoded identities (else no curves).
    """
    sheets = list(result["sheets"])
    rows = [result["sheets"][n] for n in sheets]
    suite, curves = result["suite"], {}
    if suite == "invariance":
        for key in ("identity", "view", "mirror"):
            curves[f"{key} index"] = [s["population"][key] for s in rows]
            if all("face_patch" in s for s in rows):
                curves[f"{key} index, face patch"] = [s["face_patch"]["population"][key] for s in rows]
    elif suite == "identity":
        curves["selective share"] = [s["selective"] for s in rows]
        for key in ("all", "selective", "non_selective"):
            curves[f"decoding {key.replace('_', '-')}"] = [s["decoding"]["original"][key]["accuracy"] for s in rows]
    elif all("decoding" in s for s in rows):
        curves["identity decoding, intact"] = [s["decoding"]["before"] for s in rows]
        curves["identity decoding, lesioned"] = [s["decoding"]["after"] for s in rows]
    return sheets, curves


def match_suite(model, stimuli, neural, sheets=None, n_permutations: int = 1000, seed: int = 0,
                responses=None) -> dict:
    """Best model unit (over `sheets`, default all) for every neuron of `neural` (rows = the stimuli in order).

    `responses`: the model's responses to `stimuli` (``{sheet: (n_stimuli, n_units)}``, the
    candidate sheets only), when the caller has them.
    """
    from .analysis.matching import match_neurons

    resp = model.responses(stimuli.images, sheets) if responses is None else responses
    names = list(resp)
    offsets = np.cumsum([0] + [resp[n].shape[1] for n in names])
    match = match_neurons(np.concatenate([resp[n] for n in names], axis=1), neural,
                          n_permutations=n_permutations, seed=seed)
    neurons = []
    for j, (u, r, c, rc, p) in enumerate(zip(match.unit, match.r, match.ceiling, match.r_corrected, match.p)):
        row = {"neuron": j, "sheet": None, "unit": None, "position_mm": None,
               "r": _num(r), "noise_ceiling": _num(c), "r_corrected": _num(rc), "p": _num(p)}
        if u >= 0:
            k = int(np.searchsorted(offsets, u, side="right") - 1)
            local = int(u - offsets[k])
            row.update(sheet=names[k], unit=local,
                       position_mm=[float(v) for v in model.sheet(names[k]).positions[local]])
        neurons.append(row)
    return {"model": model.name, "stimuli": stimuli.name, "permutations": n_permutations, "neurons": neurons}


def match_curves(result: dict, responses: dict, neural, neuron: int) -> tuple:
    """Tuning curves of `neuron` and of its matched unit across the stimuli: ``(unit, neuron)``.

    Both are z-scored over the stimuli (the match's r is their mean product); the neuron's
    responses are averaged over repetitions first. `result` is :func:`match_suite`'s, `responses`
    the model's responses it matched (``{sheet: (n_stimuli, n_units)}``) and `neural` the
    neural responses it matched. Raises TopoviewerError for a neuron without a matched unit.
    """
    from .analysis.matching import neuron_means

    row = result["neurons"][neuron]
    if row["unit"] is None:
        raise TopoviewerError(f"neuron {neuron} has no matched unit (constant responses)")
    return (_zscore(responses[row["sheet"]][:, row["unit"]]), _zscore(neuron_means(neural)[:, neuron]))


def _zscore(x):
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


def _num(x):
    return float(x) if np.isfinite(x) else None


def load_neural(path, n_stimuli: int) -> np.ndarray:
    """Neural responses from an ``.npz`` or ``.csv`` file: (stimuli × neurons[ × repetitions]) floats.

    An ``.npz`` holds one array (or several, one of them named ``responses``); a ``.csv`` holds
    one row per stimulus and one column per neuron (a first line of column names is skipped).
    Rows follow the stimuli in order (a folder's images sorted by category folder, then file name).
    """
    from .positions import _open_npz, _read_key
    from .validate import MAX_ARRAY_BYTES, input_file

    path = input_file(path, "neural responses file (.npz or .csv)")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with _open_npz(path) as npz:
            keys = list(npz.keys())
            if len(keys) != 1 and "responses" not in keys:
                raise TopoviewerError(f"{path}: expected one array, or one named 'responses', got {keys or 'none'}")
            data = _read_key(npz, keys[0] if len(keys) == 1 else "responses", path)
    elif suffix == ".csv":
        if path.stat().st_size > MAX_ARRAY_BYTES:
            raise TopoviewerError(f"{path}: more than MAX_ARRAY_BYTES = {MAX_ARRAY_BYTES:,} bytes of text; refused")
        lines = path.read_text(errors="replace").splitlines()
        try:
            first = [float(v) for v in lines[0].split(",")] if lines else None
        except ValueError:
            first = None
        try:
            data = np.loadtxt(lines[0 if first is not None else 1:], delimiter=",", ndmin=2)
        except ValueError as exc:
            raise TopoviewerError(f"{path}: expected numbers separated by commas, one row per stimulus ({exc})") from None
    else:
        raise TopoviewerError(f"{path}: expected a .npz or .csv file of (stimuli × neurons[ × repetitions]) responses")
    if not np.issubdtype(data.dtype, np.number) or data.ndim not in (2, 3):
        raise TopoviewerError(f"{path}: expected a numeric (stimuli × neurons[ × repetitions]) array, "
                              f"got {data.dtype} of shape {data.shape}")
    if data.shape[0] != n_stimuli or data.shape[1] == 0:
        raise TopoviewerError(f"{path}: expected {n_stimuli} rows (one per stimulus image, in sorted file-name order) "
                              f"and ≥ 1 neuron, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise TopoviewerError(f"{path}: responses contain NaN or infinity")
    return data.astype(np.float64)
