"""Lesions as causal evidence: what a network loses when a set of units is silenced.

:func:`lesion_effect` compares the per-class accuracy of the model's own classifier before
and after silencing units of one sheet (:meth:`topoviewer.model.TopoModel.lesion`) with
lesions of the same number of units drawn at random from the same sheet; :func:`lesion_decoding`
does the same for the cross-validated decoding of any labels (e.g. face identities) from a
read-out sheet at or after the lesioned one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TopoviewerError

__all__ = ["CONTROLS", "LesionDecoding", "LesionEffect", "class_accuracy", "class_indices", "lesion_decoding",
           "lesion_effect", "random_lesions", "region_units"]

#: Size-matched random lesions: any units of the sheet, or a contiguous region.
CONTROLS = ("units", "region")


@dataclass
class LesionEffect:
    """Per-class accuracy before and after a lesion, and after size-matched random lesions."""

    categories: list
    control: str            # "units" or "region" (see :func:`random_lesions`)
    before: np.ndarray      # (n_categories,)
    after: np.ndarray       # (n_categories,)
    random: np.ndarray      # (n_random, n_categories)
    n_units: int

    @property
    def p(self) -> np.ndarray:
        """Per class: share of random lesions (plus the lesion itself) that cost at least as much accuracy."""
        return _p_drop(self.before, self.after, self.random)

    def summary(self) -> dict:
        rnd = self.random.mean(axis=0) if len(self.random) else np.full(len(self.categories), np.nan)
        return {
            "units": self.n_units,
            "random_lesions": int(len(self.random)),
            "control": self.control,
            "categories": {
                c: {"before": float(b), "after": float(a), "random_mean": _num(r), "p": _num(p)}
                for c, b, a, r, p in zip(self.categories, self.before, self.after, rnd, self.p)
            },
        }


def _p_drop(before, after, random) -> np.ndarray:
    """Share of random lesions (plus the lesion itself) that cost at least as much as the lesion."""
    return (1 + ((before - random) >= (before - after) - 1e-12).sum(axis=0)) / (1 + len(random))


@dataclass
class LesionDecoding:
    """Cross-validated decoding accuracy before and after a lesion, and after size-matched random lesions."""

    read_out: str           # the sheet decoded from
    control: str
    before: float
    after: float
    random: np.ndarray      # (n_random,)
    chance: float
    n_units: int

    @property
    def p(self) -> float:
        return float(_p_drop(self.before, self.after, self.random))

    def summary(self) -> dict:
        return {"read_out": self.read_out, "units": self.n_units, "control": self.control, "before": self.before,
                "after": self.after, "random": [float(v) for v in self.random],
                "random_mean": _num(self.random.mean()) if len(self.random) else None, "p": self.p,
                "chance": self.chance}


def _num(x):
    return float(x) if np.isfinite(x) else None


def class_indices(model, categories) -> np.ndarray:
    """Index of each category among ``model.classes``; TopoviewerError naming the missing ones."""
    classes = list(model.classes)
    missing = [c for c in categories if c not in classes]
    if missing:
        have = ", ".join(classes) if classes else "none recorded"
        raise TopoviewerError(f"the model's classifier has no class {', '.join(missing)} (its classes: {have})")
    return np.array([classes.index(c) for c in categories], dtype=np.int64)


def class_accuracy(model, stimuli) -> np.ndarray:
    """Share of each category's images that the model's classifier labels with that category.

    Every category of `stimuli` must be one of ``model.classes``; the prediction is the arg-max
    over all of the model's classes.
    """
    target = class_indices(model, stimuli.categories)[stimuli.labels]
    hit = np.asarray(model.logits(stimuli.images)).argmax(axis=1) == target
    return np.array([hit[stimuli.labels == k].mean() if np.any(stimuli.labels == k) else np.nan
                     for k in range(len(stimuli.categories))])


def random_lesions(sheet, size: int, n: int, control: str = "units", seed: int = 0) -> list:
    """`n` random sets of `size` units of `sheet`, each a 1-D index array.

    ``units``: drawn uniformly without replacement; ``region``: the `size` units nearest to a
    unit drawn uniformly (a contiguous region of the same size, wherever it falls).
    """
    if control not in CONTROLS:
        raise TopoviewerError(f"random lesion control must be one of {', '.join(CONTROLS)}, got {control!r}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        if control == "units":
            out.append(rng.choice(sheet.n_units, size=size, replace=False))
        else:
            centre = sheet.positions[rng.integers(sheet.n_units)]
            out.append(np.argsort(sheet.distances_to(centre), kind="stable")[:size])
    return out


def region_units(sheet, polygons) -> np.ndarray:
    """Boolean mask of the units of `sheet` inside any of `polygons` (a drawn region to lesion).

    Parameters
    ----------
    sheet : Sheet
    polygons : sequence of (n_vertices ≥ 3, 2) arrays
        Closed polygons in the sheet's coordinates, vertices as (x, y); a unit inside several
        counts once. Whether a unit exactly on an edge is inside is not defined.
    """
    from matplotlib.path import Path

    inside = np.zeros(sheet.n_units, dtype=bool)
    for k, poly in enumerate(polygons):
        poly = np.asarray(poly, dtype=float)
        if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3 or not np.all(np.isfinite(poly)):
            raise TopoviewerError(f"region {k} must be a polygon of ≥ 3 finite (x, y) vertices, got shape {poly.shape}")
        inside |= Path(poly, closed=False).contains_points(sheet.positions)
    return inside


def _unit_indices(model, sheet, units) -> np.ndarray:
    n = model.sheet(sheet).n_units
    idx = np.asarray(units)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise TopoviewerError(f"a lesion mask of sheet {sheet!r} must have shape ({n},), got {idx.shape}")
        idx = np.flatnonzero(idx)
    return idx


def lesion_decoding(model, sheet, units, stimuli, read_out=None, n_random: int = 3, seed: int = 0,
                    control: str = "units", folds: int = 5, intact=None) -> LesionDecoding:
    """Decoding of `stimuli`'s labels from `read_out` with `units` of `sheet` silenced, against random lesions.

    The labels (e.g. the identities of ``face-identities``) are decoded by
    :func:`topoviewer.analysis.identity.decode` (cross-validated linear SVM, `folds` folds, fold
    assignment seeded by `seed`, the same for every lesion) from all units of `read_out` (default:
    the last sheet), before the lesion, with it, and with each of `n_random` size-matched random
    lesions of `sheet` (`control`, see :func:`random_lesions`). The read-out sheet must be `sheet`
    or follow it (a lesion reaches only its own and later sheets). `intact`: the decoding of the
    intact model with the same arguments, when the caller has it (it does not depend on the lesion).
    """
    from .identity import decode

    names = list(model.sheet_names)
    lesioned = model.sheet(sheet).name
    read_out = names[-1] if read_out is None else model.sheet(read_out).name
    if names.index(read_out) < names.index(lesioned):
        raise TopoviewerError(f"decoding from {read_out!r} cannot see a lesion of {lesioned!r}, which follows it; "
                              f"read out from {lesioned!r} or a later sheet")
    idx = _unit_indices(model, sheet, units)

    def accuracy():
        responses = model.responses(stimuli.images, sheets=[read_out])[read_out]
        return decode(responses, stimuli.labels, folds=folds, seed=seed)

    base = intact if intact is not None else accuracy()
    with model.lesion(sheet, idx):
        after = accuracy().accuracy
    random = []
    for lesion in random_lesions(model.sheet(sheet), len(idx), n_random, control, seed):
        with model.lesion(sheet, lesion):
            random.append(accuracy().accuracy)
    return LesionDecoding(read_out, control, base.accuracy, after, np.array(random, dtype=float), base.chance,
                          int(len(idx)))


def lesion_effect(model, sheet, units, stimuli, n_random: int = 10, seed: int = 0,
                  control: str = "units") -> LesionEffect:
    """Per-class accuracy with `units` of `sheet` silenced, against size-matched random lesions.

    Parameters
    ----------
    model : TopoModel
    sheet : str
        Sheet name or label.
    units : int array or bool mask
        The units to silence.
    stimuli : StimulusSet
        Images whose categories are classes of the model.
    n_random : int
        Number of random lesions of the same size.
    seed : int
        Seed of the random lesions.
    control : {"units", "region"}
        Random units or random contiguous regions (see :func:`random_lesions`).
    """
    idx = _unit_indices(model, sheet, units)
    before = class_accuracy(model, stimuli)
    with model.lesion(sheet, idx):
        after = class_accuracy(model, stimuli)
    random = []
    for lesion in random_lesions(model.sheet(sheet), len(idx), n_random, control, seed):
        with model.lesion(sheet, lesion):
            random.append(class_accuracy(model, stimuli))
    random = np.array(random).reshape(n_random, len(before))
    return LesionEffect(list(stimuli.categories), control, before, after, random, int(len(idx)))
