"""Stimulus sets: the :class:`StimulusSet` container, sets read from a folder
(``DIR/<category>/*.png``) and single images from files or arrays."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from topoviewer.errors import TopoviewerError
from topoviewer.images import square_gray

#: Largest image (width × height) that is read; larger files are refused as
#: possible decompression bombs. Raise it to read bigger images.
MAX_PIXELS = 100_000_000
#: File suffixes :func:`load_folder` reads (compared case-insensitively).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: Grey that transparent pixels are composited on.
ALPHA_BACKGROUND = 0.5

_PIL_SETTINGS = threading.Lock()


@dataclass(eq=False)
class StimulusSet:
    """Images with category labels.

    Attributes
    ----------
    images : ndarray
        (n, H, W) grayscale or (n, H, W, 3) RGB, float32 in [0, 1].
    labels : ndarray
        (n,) int64, each an index into `categories`.
    categories : list of str
        Category names, unique.
    name : str
        Where the set came from, e.g. ``"localizer(seed=1234,size=64)"`` or a
        folder path; sets with different images have different names.
    """

    images: np.ndarray
    labels: np.ndarray
    categories: list
    name: str

    def __post_init__(self):
        self.images = np.asarray(self.images, np.float32)
        self.labels = np.asarray(self.labels).astype(np.int64, copy=False)
        self.categories = [str(c) for c in self.categories]
        shape = self.images.shape
        if not (len(shape) == 3 or (len(shape) == 4 and shape[3] == 3)):
            raise TopoviewerError(
                f"stimulus images must have shape (n, H, W) or (n, H, W, 3), got {shape}"
            )
        if self.labels.shape != (shape[0],):
            raise TopoviewerError(
                f"expected one label per image ({shape[0]}), got labels of shape "
                f"{self.labels.shape}"
            )
        if len(set(self.categories)) != len(self.categories):
            raise TopoviewerError(f"category names must be unique, got {self.categories}")
        if self.labels.size and not 0 <= self.labels.min() <= self.labels.max() < len(
            self.categories
        ):
            raise TopoviewerError(
                f"labels must index the {len(self.categories)} categories "
                f"(0..{len(self.categories) - 1})"
            )
        if self.images.size and not 0.0 <= self.images.min() <= self.images.max() <= 1.0:
            raise TopoviewerError("stimulus images must be finite values in [0, 1]")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index, name: str | None = None) -> StimulusSet:
        """The images picked by `index`, with the same categories.

        Parameters
        ----------
        index : int array or bool mask of length ``len(self)``
            Which images to keep, in that order.
        name : str, optional
            Name of the new set; by default `self.name` plus a digest of `index`.
        """
        index = np.atleast_1d(np.asarray(index))
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise TopoviewerError(
                    f"a boolean subset mask must have shape ({len(self)},), got {index.shape}"
                )
            index = np.flatnonzero(index)
        elif index.size == 0:
            index = index.astype(np.int64)
        elif not np.issubdtype(index.dtype, np.integer) or index.ndim != 1:
            raise TopoviewerError("a subset index must be a 1-D integer array or a boolean mask")
        elif index.min() < -len(self) or index.max() >= len(self):
            raise TopoviewerError(f"subset indices must lie in [0, {len(self)})")
        if name is None:
            digest = hashlib.sha1(index.astype(np.int64).tobytes()).hexdigest()[:8]
            name = f"{self.name}[{index.size} images {digest}]"
        return StimulusSet(self.images[index], self.labels[index], list(self.categories), name)

    def split_halves(self, seed: int = 0) -> tuple[StimulusSet, StimulusSet]:
        """Split into two disjoint halves, stratified by category.

        The same split as :func:`topoviewer.analysis.split_halves` on the labels: each
        category's images are shuffled with `seed`, the first half gets ``k // 2``.
        Both halves keep the original image order.
        """
        from topoviewer.analysis.patches import split_halves

        first, second = split_halves(self.labels, seed)
        return (
            self.subset(first, f"{self.name}/half1(seed={seed})"),
            self.subset(second, f"{self.name}/half2(seed={seed})"),
        )

    def mask(self, category: str) -> np.ndarray:
        """Boolean (n,) mask of the images of `category`."""
        if category not in self.categories:
            raise TopoviewerError(
                f"unknown category {category!r}; this set has {', '.join(self.categories)}"
            )
        return self.labels == self.categories.index(category)


def load_image(source, crop=None, keep_uint8: bool = False) -> np.ndarray:
    """Read one image from a file or an array.

    Parameters
    ----------
    source : str, path or ndarray
        An image file Pillow can read (any mode: 1, L, LA, RGB, RGBA, P, I;16,
        I, F, CMYK, ...) or an array of dtype bool, uint8, uint16 or float with
        shape (H, W), (H, W, 1), (H, W, 2) (grey + alpha), (H, W, 3) or (H, W, 4).
    crop : callable, optional
        ``crop(width, height) → (left, top, right, bottom)``: read only that region of
        a file (cut before the conversion to float, which is then cheaper).
    keep_uint8 : bool
        Return an 8-bit grey or colour file without transparency as it is stored,
        uint8 (0–255), instead of float32 (the training loader resizes it in uint8).

    Returns
    -------
    image : ndarray
        float32 (H, W) in [0, 1] for grey input, (H, W, 3) for colour input.

    Notes
    -----
    uint8 is divided by 255 and uint16 (and 16-bit files) by 65535. 32-bit
    integer files (mode "I") are read as 16-bit when they fit in [0, 65535].
    Floats (and mode "F") already in [0, 1] are kept; any other range is
    stretched linearly from its minimum to its maximum. Transparent pixels are
    composited on mid-grey (:data:`ALPHA_BACKGROUND`). Images larger than
    :data:`MAX_PIXELS` are refused.

    Raises
    ------
    TopoviewerError
        Missing, unreadable, corrupt or truncated files; arrays with NaN or inf,
        an unsupported dtype or shape; empty or too large images.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, "the image array")
    if not isinstance(source, (str, Path)):
        raise TopoviewerError(
            f"expected an image file path or a numpy array, got {type(source).__name__}"
        )
    path = Path(source)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "missing"
        raise TopoviewerError(f"expected an image file, but {path} is {what}")
    with _opened(path) as img:
        img.load()
        array = _pil_to_array(img if crop is None else img.crop(crop(*img.size)))
    if keep_uint8 and array.dtype == np.uint8 and (array.ndim == 2 or array.shape[2] == 3) and array.size:
        return array
    return _from_array(array, str(path))


def load_folder(path, size: int | None = None) -> StimulusSet:
    """Read a stimulus set laid out as ``DIR/<category>/*.png``.

    Parameters
    ----------
    path : str or path
        Folder with one subfolder per category (sorted by name; hidden entries
        are skipped), each holding image files with a suffix in
        :data:`IMAGE_SUFFIXES`, any case.
    size : int, optional
        Edge of the square output images (see :func:`load_images`). By default,
        the shortest side over all images (no image is upsampled).

    Returns
    -------
    StimulusSet
        Grayscale (n, size, size) images, labels in folder order, named by the
        folder path.
    """
    root = Path(path)
    if not root.is_dir():
        what = "a file" if root.exists() else "missing"
        raise TopoviewerError(f"expected a stimulus folder DIR/<category>/*.png, but {root} is {what}")
    folders = sorted(p for p in _listdir(root) if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        try:
            folder.name.encode("utf-8")
        except UnicodeEncodeError:
            raise TopoviewerError(
                f"category folder name {folder.name!r} in {root} is not valid UTF-8; rename it"
            ) from None
    if not folders:
        raise TopoviewerError(
            f"expected one subfolder per category in {root} (DIR/<category>/*.png), found none"
        )
    files = [_image_files(folder) for folder in folders]
    name = str(root.resolve())
    if size is None:
        size = min(min(_image_size(f)) for group in files for f in group)
    elif isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise TopoviewerError(f"size must be a positive integer number of pixels, got {size!r}")
    else:
        name += f"(size={size})"
    images = load_images([f for group in files for f in group], int(size))
    labels = np.repeat(np.arange(len(folders)), [len(group) for group in files])
    return StimulusSet(images, labels, [f.name for f in folders], name)


def load_images(paths, size: int) -> np.ndarray:
    """Read image files as one (n, size, size) grey float32 stack in [0, 1].

    Each image is read with :func:`load_image`, converted to grey with the ITU-R 601
    luma weights, resized so its shorter side is `size` (antialiased bilinear) and
    centre-cropped: :func:`topoviewer.images.square_gray`, the same conversion the
    model applies to images of any other size.
    """
    return np.stack([square_gray(load_image(p), size) for p in paths]).astype(np.float32, copy=False)


def _image_files(folder: Path) -> list:
    files = sorted(
        p for p in _listdir(folder)
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise TopoviewerError(
            f"category folder {folder} has no images (expected files ending in "
            f"{', '.join(IMAGE_SUFFIXES)})"
        )
    return files


def _listdir(folder: Path) -> list:
    try:
        return list(folder.iterdir())
    except OSError as e:
        raise TopoviewerError(f"cannot read the folder {folder}: {e.strerror or e}") from None


def _image_size(path: Path) -> tuple:
    with _opened(path) as img:
        return img.size


@contextlib.contextmanager
def _opened(path: Path):
    """Open an image lazily under the :data:`MAX_PIXELS` guard; map every
    failure to one TopoviewerError that names the file."""
    try:
        with _pixel_limit(), Image.open(path) as img:
            yield img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise TopoviewerError(
            f"{path} is larger than MAX_PIXELS = {MAX_PIXELS:,} pixels (a guard against "
            f"decompression bombs; raise topoviewer.stimuli.files.MAX_PIXELS to read it): {e}"
        ) from None
    except UnidentifiedImageError:
        raise TopoviewerError(
            f"{path} is not an image Pillow can read (expected e.g. PNG, JPEG, TIFF or BMP)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise TopoviewerError(f"{path} is a corrupt or truncated image: {e}") from None


@contextlib.contextmanager
def _pixel_limit():
    """Make Pillow refuse images above MAX_PIXELS (its warning becomes an error)."""
    with _PIL_SETTINGS, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _pil_to_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16)
    if mode == "I":
        a = np.asarray(img)
        return a.astype(np.uint16) if a.size and 0 <= a.min() and a.max() <= 65535 else a.astype(np.float32)
    if mode == "F":
        return np.asarray(img, np.float32)
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"))
    if mode in ("LA", "La"):
        return np.asarray(img.convert("LA"))
    transparent = mode in ("RGBA", "RGBa", "PA") or "transparency" in img.info
    return np.asarray(img.convert("RGBA" if transparent else "RGB"))


def _from_array(a: np.ndarray, where: str) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] in (1, 2, 3, 4):
        channels = a.shape[2]
    elif a.ndim == 2:
        channels = 1
    else:
        raise TopoviewerError(
            f"{where}: expected an image of shape (H, W) or (H, W, C) with C in 1..4, "
            f"got {a.shape}"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise TopoviewerError(f"{where} is empty (shape {a.shape})")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise TopoviewerError(
            f"{where} has {a.shape[0] * a.shape[1]:,} pixels, more than MAX_PIXELS = "
            f"{MAX_PIXELS:,} (raise topoviewer.stimuli.files.MAX_PIXELS to allow it)"
        )
    x = _unit_range(a, where).reshape(a.shape[0], a.shape[1], channels)
    if channels in (2, 4):
        alpha = np.clip(x[..., -1:], 0.0, 1.0)
        x = x[..., :-1] * alpha + ALPHA_BACKGROUND * (1.0 - alpha)
    x = x[..., 0] if x.shape[2] == 1 else x
    return np.ascontiguousarray(x, np.float32)


def _unit_range(a: np.ndarray, where: str) -> np.ndarray:
    if a.dtype == bool:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if not np.issubdtype(a.dtype, np.floating):
        raise TopoviewerError(
            f"{where}: expected dtype bool, uint8, uint16 or float, got {a.dtype}"
        )
    x = a.astype(np.float32)
    if not np.isfinite(x).all():
        raise TopoviewerError(f"{where} contains NaN or infinite values")
    colour = x if x.ndim == 2 or x.shape[2] in (1, 3) else x[..., :-1]
    lo, hi = colour.min(), colour.max()
    if lo < 0.0 or hi > 1.0:
        colour[...] = (colour - lo) / (hi - lo) if hi > lo else 0.5
    return x

