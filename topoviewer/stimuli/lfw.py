"""Real photographs for validation: scikit-image's Labeled Faces in the Wild subset.

``skimage.data.lfw_subset()`` holds 200 grey 25 × 25 crops from LFW: the first 100 are
faces, the last 100 are non-face crops of the same photographs. topoviewer uses them only
to *validate* transfer from the procedural diet to photographs (:func:`lfw`,
:func:`topoviewer.analysis.photos.photo_transfer`); no image of the set enters the
training diet or any augmentation pool (tests check the hashes).
"""

from __future__ import annotations

import hashlib

import numpy as np

from topoviewer.errors import TopoviewerError
from topoviewer.stimuli._draw import check_size
from topoviewer.images import square_gray
from topoviewer.stimuli.files import StimulusSet, load_image

__all__ = ["LFW_CATEGORIES", "lfw", "lfw_raw", "image_hashes"]

LFW_CATEGORIES = ("faces", "non-faces")


def lfw_raw() -> np.ndarray:
    """The 200 raw LFW-subset crops, (200, 25, 25) float in [0, 1] (faces first)."""
    try:
        from skimage import data
    except ImportError:
        raise TopoviewerError(
            "the LFW validation photographs come with scikit-image; install it (pip install scikit-image)"
        ) from None
    images = np.asarray(data.lfw_subset())
    if images.shape[0] != 200:
        raise TopoviewerError(f"skimage.data.lfw_subset() returned {images.shape[0]} images, expected 200")
    return images


def lfw(size: int | None = 32) -> StimulusSet:
    """The LFW-subset photographs as a stimulus set: ``faces`` (100) and ``non-faces`` (100).

    Parameters
    ----------
    size : int or None
        Edge of the output images in pixels: each 25 × 25 crop goes through the same path
        as a dropped image file (:func:`load_image`, then shorter side resized to `size`
        and centre-cropped). None keeps 25 px.

    Returns
    -------
    StimulusSet
        200 float32 grey images, labels 0 (faces) then 1 (non-faces), named
        ``"lfw(size=…)"``.
    """
    raw = lfw_raw()
    images = [load_image(np.asarray(im, np.float64)) for im in raw]
    if size is not None:
        size = check_size(size)
        images = [square_gray(im, size) for im in images]
    labels = np.repeat([0, 1], 100)
    return StimulusSet(np.stack(images), labels, list(LFW_CATEGORIES), f"lfw(size={size})")


def image_hashes(images, decimals: int = 3) -> set:
    """SHA-1 digests of images after rounding to `decimals` (for leak checks between sets)."""
    arr = np.round(np.asarray(images, np.float64), decimals)
    return {hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest() for a in arr}
