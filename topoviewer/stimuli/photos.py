"""A pool of natural photographs for the training diet's backgrounds and clutter.

The photographs are the non-face sample images that ship inside scikit-image
(``skimage.data``; read from the installed package, no download). Images that show a
human face (``astronaut``, ``camera``; matplotlib's ``grace_hopper``), the cat
(``chelsea``, ``cat``: an animal face) and the LFW subset
are *excluded*: they are held out for validating transfer to photographs.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

from topoviewer.errors import TopoviewerError
from topoviewer.images import to_gray

__all__ = ["PHOTO_POOL", "HELD_OUT", "photo_pool", "photo_crops"]

#: skimage.data images in the training pool (all ship with scikit-image; none shows a face).
PHOTO_POOL = (
    "brick", "grass", "gravel", "coffee", "rocket", "coins", "clock", "moon", "page", "text",
    "hubble_deep_field", "immunohistochemistry", "cell", "retina", "horse",
)
#: Photographs never used for training (faces, or the validation set).
HELD_OUT = ("lfw_subset", "astronaut", "camera", "grace_hopper", "chelsea", "cat")


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
    out = []
    for name in PHOTO_POOL:
        a = np.asarray(getattr(data, name)())
        if a.dtype == bool:
            a = a.astype(np.float32)
        elif a.dtype == np.uint8:
            a = a.astype(np.float32) / 255.0
        else:
            a = a.astype(np.float32)
        if a.ndim == 3:
            a = to_gray(a[..., :3])
        a.setflags(write=False)
        out.append(a)
    return tuple(out)


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
        crop = np.ascontiguousarray(img[top:top + edge, left:left + edge])
        crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR
                                                       if edge < size else Image.Resampling.BOX))
        out[i] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return np.clip(out, 0.0, 1.0)
