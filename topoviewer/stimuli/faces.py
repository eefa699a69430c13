"""Procedural face-identity sets: one head per identity seen from several viewpoints
(``face-views``) or in many images with nuisance variation (``face-identities``), and
image transforms that keep the identity (:func:`transform`).

Every identity is a :class:`~topoviewer.stimuli.localizer.FaceIdentity` drawn from its
own stream (identity k is the same head in both sets, for a given seed) and painted by
:func:`~topoviewer.stimuli.localizer.draw_face` through the shared render pipeline, so
the faces have the localizer's backgrounds and image statistics.
"""

from __future__ import annotations

import math

import numpy as np

from topoviewer.errors import TopoviewerError
from topoviewer.stimuli import _draw
from topoviewer.stimuli._draw import Placement
from topoviewer.stimuli.files import StimulusSet
from topoviewer.stimuli.localizer import (
    FaceExpression,
    draw_face,
    random_face_expression,
    random_face_identity,
)

__all__ = ["FACE_VIEW_YAWS", "TRANSFORMS", "face_identities", "face_views", "mirror_views", "transform",
           "view_index"]

#: Head orientations of :func:`face_views`, degrees (0 frontal, ±90 the two profiles): four
#: mirror-symmetric pairs and the frontal view.
FACE_VIEW_YAWS = (-90.0, -67.5, -45.0, -22.5, 0.0, 22.5, 45.0, 67.5, 90.0)
#: Largest head turn of :func:`face_identities`, degrees (either side).
IDENTITY_YAW = 45.0
#: Slope of the random lighting gradient of :func:`face_identities` (see :func:`_draw.render`).
IDENTITY_SHADING = 0.3
_VIEW_PLACEMENT = Placement(scale=(0.9, 0.9), shift=0.0, angle=0.0, flip=False)
_NEUTRAL = FaceExpression(smile=0.0, mouth_open=0.0, brow_tilt=0.0, eye_open=1.0)


def _identity_names(n: int) -> list:
    return [f"id{k:03d}" for k in range(n)]


def face_views(size: int = 64, identities: int = 25, seed: int = 1234) -> StimulusSet:
    """Each identity at every head orientation of :data:`FACE_VIEW_YAWS` (after Freiwald & Tsao 2010).

    A view at −yaw is the mirror image of the head drawn at +yaw; the head, its neutral
    expression and its placement are the same in every view, only the 1/f background differs.

    Parameters
    ----------
    size : int
        Edge of the square grey images in pixels (16 to 1024).
    identities : int
        Number of identities (25 in the paper).
    seed : int
        Non-negative seed; the same seed gives identical images.

    Returns
    -------
    StimulusSet
        ``identities × len(FACE_VIEW_YAWS)`` images grouped by identity, views in the order
        of :data:`FACE_VIEW_YAWS` within each (:func:`view_index` gives them); labels are
        identities ``id000``, ``id001``, …
    """
    yaws = np.radians(FACE_VIEW_YAWS)

    def drawer(face):
        turns = iter(yaws)

        def draw(canvas, rng):
            yaw = next(turns)
            if yaw < 0:
                canvas.mirror()
            draw_face(canvas, face, abs(yaw), _NEUTRAL)
        return draw

    return _render(size, identities, len(yaws), seed, drawer, _VIEW_PLACEMENT, 0.0,
                   f"face-views(seed={seed},size={size},identities={identities})")


def view_index(stimuli: StimulusSet) -> np.ndarray:
    """Index into :data:`FACE_VIEW_YAWS` of each image of a :func:`face_views` set."""
    n = len(FACE_VIEW_YAWS)
    if len(stimuli) % n or not stimuli.name.startswith("face-views("):
        raise TopoviewerError(f"expected a face-views set (identities × {n} views), got {stimuli.name!r}")
    return np.tile(np.arange(n), len(stimuli) // n)


def mirror_views() -> np.ndarray:
    """For each view of :data:`FACE_VIEW_YAWS`, the index of its mirror view (the frontal view's own)."""
    yaws = list(FACE_VIEW_YAWS)
    return np.array([yaws.index(-y if y else 0.0) for y in yaws])


def face_identities(size: int = 64, identities: int = 50, per_identity: int = 10, seed: int = 1234) -> StimulusSet:
    """Many images of each identity with nuisance variation (after the 50 × 10 celebrity set of the VGG-16 identity-coding study).

    Each image turns the head by up to ±:data:`IDENTITY_YAW`°, gives it a random expression,
    scale, shift, in-plane rotation and lighting gradient, on a fresh 1/f background.

    Parameters
    ----------
    size : int
        Edge of the square grey images in pixels (16 to 1024).
    identities, per_identity : int
        Number of identities and images per identity.
    seed : int
        Non-negative seed; the same seed gives identical images.

    Returns
    -------
    StimulusSet
        Images grouped by identity, labels ``id000``, ``id001``, ….
    """
    turn = math.radians(IDENTITY_YAW)

    def drawer(face):
        def draw(canvas, rng):
            draw_face(canvas, face, rng.uniform(0.0, turn), random_face_expression(rng))
        return draw

    return _render(size, identities, per_identity, seed, drawer, Placement(), IDENTITY_SHADING,
                   f"face-identities(seed={seed},size={size},identities={identities},per_identity={per_identity})")


def _render(size, identities, per_identity, seed, drawer, placement, shading, name) -> StimulusSet:
    size = _draw.check_size(size)
    identities = _draw.check_count(identities, "identities")
    per_identity = _draw.check_count(per_identity, "images per identity")
    if identities < 2:
        raise TopoviewerError(f"a face-identity set needs at least 2 identities, got {identities}")
    images = []
    for label in _identity_names(identities):
        shapes, backgrounds = _draw.streams(seed, "faces", "train", label)
        face = random_face_identity(shapes)
        images.append(_draw.render(drawer(face), placement, per_identity, size, shapes, backgrounds,
                                   shading=shading))
    labels = np.repeat(np.arange(identities), per_identity)
    return StimulusSet(np.concatenate(images), labels, _identity_names(identities), name)


#: Transforms of :func:`transform`.
TRANSFORMS = ("mooney", "invert", "cartoon", "blur")
#: ``cartoon``: luminance bands (quantiles of the smoothed image) and the share of pixels drawn as outlines.
CARTOON_BANDS, CARTOON_OUTLINE = 4, 0.1


def _cartoon(smooth: np.ndarray) -> np.ndarray:
    """One blurred grey image → flat bands of its mean grey, with black outlines (see :func:`transform`)."""
    from scipy.ndimage import sobel

    cuts = np.quantile(smooth, np.linspace(0, 1, CARTOON_BANDS + 1)[1:-1])
    band = np.digitize(smooth, cuts)
    means = np.array([smooth[band == b].mean() if np.any(band == b) else 0.0 for b in range(CARTOON_BANDS)])
    out = means[band].astype(np.float32)
    grad = np.hypot(sobel(smooth, 0, mode="nearest"), sobel(smooth, 1, mode="nearest"))
    out[grad > np.quantile(grad, 1 - CARTOON_OUTLINE)] = 0.0
    return out


def transform(stimuli: StimulusSet, kind: str) -> StimulusSet:
    """The same images, transformed; labels and categories are kept.

    Parameters
    ----------
    stimuli : StimulusSet
    kind : {"mooney", "invert", "cartoon", "blur"}
        ``mooney``: two-tone image (black/white), the image blurred with σ = edge/64 px and
        thresholded at its median (Mooney faces); ``invert``: turned upside down (rotated
        180°); ``cartoon``: flat shading and dark outlines — the grey image blurred with
        σ = edge/64 px, cut into ``CARTOON_BANDS`` bands at its quantiles, each band painted with
        its mean grey, and the pixels of the strongest ``CARTOON_OUTLINE`` share of the blurred
        image's gradient magnitude (Sobel) painted black; ``blur``: Gaussian blur with σ = edge/32 px.

    Returns
    -------
    StimulusSet
        Named ``"<name>|<kind>"``.
    """
    from scipy.ndimage import gaussian_filter

    from topoviewer.images import to_gray

    if kind not in TRANSFORMS:
        raise TopoviewerError(f"unknown transform {kind!r}; expected one of {', '.join(TRANSFORMS)}")
    images = stimuli.images
    edge = images.shape[1]
    spatial = (0, 1, 1) + ((0,) if images.ndim == 4 else ())
    if kind == "invert":
        out = images[:, ::-1, ::-1]
    elif kind == "blur":
        out = gaussian_filter(images, sigma=[edge / 32 * a for a in spatial], mode="nearest")
    else:
        gray = to_gray(images) if images.ndim == 4 else images
        smooth = gaussian_filter(gray, sigma=(0, edge / 64, edge / 64), mode="nearest")
        if kind == "mooney":
            out = (smooth > np.median(smooth, axis=(1, 2), keepdims=True)).astype(np.float32)
        else:
            out = np.stack([_cartoon(im) for im in smooth])
    return StimulusSet(np.ascontiguousarray(np.clip(out, 0.0, 1.0)), stimuli.labels, list(stimuli.categories),
                       f"{stimuli.name}|{kind}")
