"""Natural photographs for the training diet: backgrounds, clutter and photographed faces.

The backgrounds and clutter are cut from the non-face sample images that ship inside
scikit-image (``skimage.data``; read from the installed package, no download). The
diet's ``real_faces`` share cuts augmented crops around the two faces of
:data:`FACE_PHOTOS` (scikit-image's ``astronaut``, matplotlib's ``grace_hopper``) and
nothing else of them. Never used for training: the LFW subset (the validation set), the
``camera`` man's face and the cat (``chelsea``, ``cat``: an animal face).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

from topoviewer.errors import TopoviewerError
from topoviewer.images import to_gray

__all__ = ["PHOTO_POOL", "HELD_OUT", "FACE_PHOTOS", "photo_pool", "photo_crops", "face_photo_crops",
           "face_context_crops"]

#: skimage.data images in the training pool (all ship with scikit-image; none shows a face).
PHOTO_POOL = (
    "brick", "grass", "gravel", "coffee", "rocket", "coins", "clock", "moon", "page", "text",
    "hubble_deep_field", "immunohistochemistry", "cell", "retina", "horse",
)
#: Photographs never used for training (the validation set, faces not in FACE_PHOTOS). The faces of
#: FACE_PHOTOS are cut from only when a recipe's diet asks for ``real_faces``.
HELD_OUT = ("lfw_subset", "camera", "chelsea", "cat")


@cache
def photo_pool() -> tuple:
    """The pool's photographs as grey float32 arrays in [0, 1] (read once, cached)."""
    try:
        from skimage import data
    except ImportError:
        raise TopoviewerError(
            "the training diet cuts backgrounds from scikit-image's sample photographs; "
            "install scikit-image (pip install scikit-image)"
        ) from None
    return tuple(_gray(getattr(data, name)()) for name in PHOTO_POOL)


def _gray(image) -> np.ndarray:
    """A photograph as a read-only grey float32 array in [0, 1] (bool, uint8 or float; grey, RGB or RGBA)."""
    a = np.asarray(image)
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    if a.ndim == 3:
        a = to_gray(a[..., :3])
    a.setflags(write=False)
    return a


def photo_crops(rng, n: int, size: int, scale=(0.08, 0.6)) -> np.ndarray:
    """`n` random square crops of the pool, resized to `size`: (n, size, size) float32 in [0, 1].

    Each crop picks a photograph, an edge of ``scale`` × its shorter side (log-uniform),
    a position and a left-right flip from `rng`.
    """
    pool = photo_pool()
    out = np.empty((n, size, size), np.float32)
    lo, hi = np.log(scale[0]), np.log(scale[1])
    for i in range(n):
        img = pool[rng.integers(len(pool))]
        h, w = img.shape
        edge = max(4, int(round(np.exp(rng.uniform(lo, hi)) * min(h, w))))
        top, left = rng.integers(0, h - edge + 1), rng.integers(0, w - edge + 1)
        out[i] = _resized_flipped(img[top:top + edge, left:left + edge], size, rng)
    return np.clip(out, 0.0, 1.0)


def _resized_flipped(crop, size: int, rng) -> np.ndarray:
    """A square crop resized to `size` (bilinear up, box down), flipped left-right with probability ½ from `rng`."""
    crop = np.ascontiguousarray(crop)
    crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR
                                                   if crop.shape[0] < size else Image.Resampling.BOX))
    return crop[:, ::-1] if rng.random() < 0.5 else crop


#: Photographed faces for the diet's ``real_faces`` share: (source, name, face centre row, column, face
#: height in pixels). Not the validation set (LFW); both ship inside installed packages.
FACE_PHOTOS = (
    ("skimage", "astronaut", 125, 200, 120),
    ("matplotlib", "grace_hopper.jpg", 260, 258, 210),
)


@cache
def face_photos() -> tuple:
    """The :data:`FACE_PHOTOS` as grey float32 arrays in [0, 1] with their face boxes (read once)."""
    out = []
    for source, name, row, col, height in FACE_PHOTOS:
        if source == "skimage":
            from skimage import data

            a = np.asarray(getattr(data, name)())
        else:
            import matplotlib.cbook as cbook

            with cbook.get_sample_data(name) as f:
                a = np.asarray(Image.open(f))
        out.append((_gray(a), row, col, height))
    return tuple(out)


def face_photo_crops(rng, n: int, size: int, zoom=(0.75, 1.5), shift=0.12, rotate=12.0,
                     warp=0.0) -> np.ndarray:
    """`n` augmented crops around the faces of :data:`FACE_PHOTOS`: (n, size, size) float32 in [0, 1].

    Each crop picks a photograph, an edge of ``zoom`` × the face height (log-uniform; < 1: the face
    fills the image, as in a face photograph's tight crop), a centre moved by up to ``shift`` × the
    face height, a rotation of up to ``rotate`` degrees and a left-right flip from `rng`. With
    ``warp`` > 0 each crop is then reshaped (:func:`_reshape`): other proportions and feature
    positions from the same two faces.
    """
    photos = face_photos()
    out = np.empty((n, size, size), np.float32)
    lo, hi = np.log(zoom[0]), np.log(zoom[1])
    for i in range(n):
        img, row, col, height = photos[rng.integers(len(photos))]
        edge = np.exp(rng.uniform(lo, hi)) * height
        r = row + rng.uniform(-shift, shift) * height
        c = col + rng.uniform(-shift, shift) * height
        half = int(np.ceil(edge * 0.75))  # room for the rotation
        top, left = int(round(r)) - half, int(round(c)) - half
        pad = max(0, -top, -left, top + 2 * half - img.shape[0], left + 2 * half - img.shape[1])
        src = np.pad(img, pad, mode="reflect") if pad else img
        patch = Image.fromarray(np.ascontiguousarray(src[top + pad:top + pad + 2 * half, left + pad:left + pad + 2 * half]))
        patch = patch.rotate(rng.uniform(-rotate, rotate), resample=Image.Resampling.BILINEAR)
        m = (2 * half - edge) / 2
        patch = patch.crop((m, m, m + edge, m + edge)).resize((size, size), Image.Resampling.BOX)
        crop = np.asarray(patch)
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        out[i] = _reshape(crop, rng, warp) if warp else crop
    return np.clip(out, 0.0, 1.0)


def _reshape(image, rng, warp):
    """A smooth random reshaping of a square image: a face of other proportions.

    Stretches the image vertically by a factor log-uniform in [1 − warp, 1 / (1 − warp)] (a longer
    or wider face) and moves its content by a smooth displacement field: 3 × 3 control points, each
    displaced by a normal of σ ``warp`` × the edge, interpolated cubically (eyes, nose and mouth
    at other distances). Edges are reflected.
    """
    from scipy import ndimage

    size = image.shape[0]
    grid = np.arange(size, dtype=np.float64) - (size - 1) / 2
    stretch = np.exp(rng.uniform(np.log(1 - warp), -np.log(1 - warp)))
    field = rng.normal(0.0, warp * size, (2, 3, 3))
    dy, dx = (ndimage.zoom(f, size / 3, order=3, mode="nearest")[:size, :size] for f in field)
    rows = grid[:, None] / stretch + (size - 1) / 2 + dy
    cols = grid[None, :] + (size - 1) / 2 + dx
    return ndimage.map_coordinates(np.asarray(image, np.float64), [rows, cols], order=1,
                                   mode="reflect").astype(np.float32)


def face_context_crops(rng, n: int, size: int, zoom=(0.4, 1.2), margin=1.3) -> np.ndarray:
    """`n` crops of the photographs of :data:`FACE_PHOTOS` *away from* their faces: (n, size, size).

    Each crop picks a photograph, an edge of ``zoom`` × the face height (log-uniform), a position
    (uniform, redrawn until the crop misses the face's square box of ``margin`` × the face height)
    and a left-right flip from `rng`: the same people, clothes, light and camera as the face crops,
    without the face — hard negatives that keep "photographed" from standing in for "face".
    """
    photos = face_photos()
    out = np.empty((n, size, size), np.float32)
    lo, hi = np.log(zoom[0]), np.log(zoom[1])
    for i in range(n):
        img, row, col, height = photos[rng.integers(len(photos))]
        h, w = img.shape
        half = margin * height / 2
        face = (row - half, row + half, col - half, col + half)
        for _ in range(1000):
            edge = int(round(min(np.exp(rng.uniform(lo, hi)) * height, h, w)))
            top, left = int(rng.integers(0, h - edge + 1)), int(rng.integers(0, w - edge + 1))
            if top + edge <= face[0] or top >= face[1] or left + edge <= face[2] or left >= face[3]:
                break
        else:  # pragma: no cover - every photograph has room beside its face
            raise TopoviewerError("no crop beside the face found")
        out[i] = _resized_flipped(img[top:top + edge, left:left + edge], size, rng)
    return np.clip(out, 0.0, 1.0)
