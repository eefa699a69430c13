"""Image → network input: the one place that converts colour to grey and resizes and crops.

Used by the model's preprocessing (:meth:`topoviewer.model.TopoModel.preprocess`), by stimulus
folders (:func:`topoviewer.stimuli.load_folder`, :func:`topoviewer.stimuli.load_images`) and so
by the napari reader, so the same picture reaches the network as the same tensor whichever way
it came in.

Resampling is **antialiased bilinear** (a triangle filter widened by the scale factor on
downsampling; Pillow's ``BILINEAR`` resize and torchvision's default ``Resize`` compute the same):
ImageNet-family checkpoints were evaluated with exactly this, and it never overshoots [0, 1]
(see docs/science.md, "Images and stimuli").
"""

from __future__ import annotations

import numpy as np

__all__ = ["LUMA", "to_gray", "resize_crop", "square_gray", "square_input"]

#: ITU-R 601-2 luma weights (those of Pillow's "L" conversion) for colour → grey.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def to_gray(images: np.ndarray) -> np.ndarray:
    """Colour images (..., 3) → grey (...) with the :data:`LUMA` weights."""
    return np.asarray(images, np.float32) @ LUMA


def resize_crop(x, size: int, shorter: float = 0.0):
    """Resize a (B, C, H, W) torch tensor so its shorter side is ``shorter`` (0 → ``size``), then crop
    the centre ``size`` × ``size`` square: never squashed. Antialiased bilinear; a no-op at the right size."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    scale = float(shorter or size) / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[..., top : top + size, left : left + size]


def square_input(image: np.ndarray, size: int, channels: int = 1, shorter: float = 0.0):
    """One image, (H, W) grey or (H, W, 3) colour in [0, 1] → a (channels, size, size) float32 torch
    tensor in [0, 1]: colour → grey with :data:`LUMA` (``channels=1``) or grey replicated
    (``channels=3``), then :func:`resize_crop` (shorter side to ``shorter``, 0 → ``size``).

    A uint8 image (0–255; the training loader's) that needs no grey conversion is resized in uint8
    — torch's fast path, values rounded to 1/255 — then scaled to [0, 1]."""
    import torch

    x = np.asarray(image)
    if x.dtype == np.uint8 and (x.ndim == 2 or channels == 3):
        t = torch.from_numpy(np.require(x, requirements="CW"))
        t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]  # HWC memory: channels_last
        t = resize_crop(t, int(size), shorter)[0].float().div_(255.0)
    else:
        x = np.asarray(x, np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
        if x.ndim == 3 and channels == 1:
            x = to_gray(x)
        t = torch.from_numpy(np.ascontiguousarray(x))
        t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
        t = resize_crop(t, int(size), shorter)[0].clamp_(0.0, 1.0)
    return t.expand(channels, -1, -1).contiguous() if t.shape[0] != channels else t.contiguous()


def square_gray(image: np.ndarray, size: int) -> np.ndarray:
    """One image, (H, W) grey or (H, W, 3) colour in [0, 1] → (size, size) grey float32 in [0, 1]."""
    return square_input(image, size, 1)[0].numpy()
