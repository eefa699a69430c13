"""Shared machinery of the procedural stimuli: seeded streams, a supersampled
drawing canvas, shape helpers, textured backgrounds and luminance matching.

Every procedural image is made the same way:

1. a category *drawer* paints a grey-level object onto a :class:`Canvas` that is
   ``size * supersampling(size)`` pixels wide, in object coordinates (x to the
   right, y down, the canvas spanning [-1, 1] before placement);
2. the canvas is box-averaged down to ``size`` (anti-aliasing), giving the object's
   premultiplied tone and its coverage;
3. the object is laid over a 1/f-noise background whose statistics are the same
   for every category, and given a faint surface texture;
4. every image is normalised to the same mean luminance and RMS contrast, so that
   categories differ in shape, not in brightness or contrast.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from topoviewer.errors import TopoviewerError

#: Mean luminance every procedural image is normalised to.
MEAN_LUMINANCE = 0.5
#: RMS contrast (standard deviation of the pixel values) every image is normalised to.
RMS_CONTRAST = 0.2
#: RMS contrast of the background texture relative to the mid-grey it sits on.
BACKGROUND_RMS = 0.07
#: RMS amplitude of the surface texture laid over objects.
SURFACE_RMS = 0.035
#: Smallest and largest image edge the generators accept, in pixels.
MIN_SIZE, MAX_SIZE = 16, 1024

#: Purposes of a random stream; streams of different purposes never coincide.
PURPOSES = {"localizer": 0, "diet": 1, "faces": 2}
#: Splits of the training diet (the localizer uses split 0).
SPLITS = {"train": 0, "val": 1}


def check_size(size) -> int:
    """Return `size` as an int, or raise if it is not a usable image edge."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TopoviewerError(f"size must be an integer number of pixels, got {size!r}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise TopoviewerError(
            f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}"
        )
    return int(size)


def check_count(value, what: str) -> int:
    """Return `value` as a positive int, or raise naming `what` was expected."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise TopoviewerError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def streams(seed, purpose: str, split: str, category: str):
    """Independent generators for the shapes and the backgrounds of one category.

    Parameters
    ----------
    seed : int
        Non-negative user seed.
    purpose : {"localizer", "diet", "faces"}
        What the images are for; different purposes give unrelated streams.
    split : {"train", "val"}
        Split of the training diet ("train" for the localizer).
    category : str
        Category name; its CRC-32 enters the spawn key, so a category's images
        do not depend on which other categories are generated with it.

    Returns
    -------
    shapes, backgrounds : numpy.random.Generator
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TopoviewerError(f"seed must be a non-negative integer, got {seed!r}")
    key = (PURPOSES[purpose], SPLITS[split], zlib.crc32(category.encode()))
    root = np.random.SeedSequence(int(seed), spawn_key=key)
    return tuple(np.random.default_rng(child) for child in root.spawn(2))


def supersampling(size: int) -> int:
    """Integer supersampling factor used to draw an image of edge `size`."""
    return int(np.clip(math.ceil(192 / size), 2, 4))


def ellipse(cx, cy, rx, ry, angle=0.0, n=32) -> np.ndarray:
    """Vertices (n, 2) of an ellipse centred at (cx, cy), rotated by `angle` rad."""
    unit = _circle(n)
    z = (rx * unit.real + 1j * ry * unit.imag) * np.exp(1j * angle)
    return np.column_stack([z.real + cx, z.imag + cy])


@cache
def _circle(n: int) -> np.ndarray:
    unit = np.exp(2j * np.pi * np.arange(n) / n)
    unit.setflags(write=False)
    return unit


def arc(cx, cy, rx, ry, start, stop, n=12) -> np.ndarray:
    """Vertices (n, 2) along an elliptical arc from `start` to `stop` rad."""
    t = np.linspace(start, stop, n)
    return np.column_stack([cx + rx * np.cos(t), cy + ry * np.sin(t)])


def rounded_box(x0, y0, x1, y1, r) -> np.ndarray:
    """Vertices of an axis-aligned box with corners rounded by radius `r`."""
    r = min(r, (x1 - x0) / 2, (y1 - y0) / 2)
    h = np.pi / 2
    return np.concatenate([
        arc(x1 - r, y0 + r, r, r, -h, 0, 5),
        arc(x1 - r, y1 - r, r, r, 0, h, 5),
        arc(x0 + r, y1 - r, r, r, h, 2 * h, 5),
        arc(x0 + r, y0 + r, r, r, 2 * h, 3 * h, 5),
    ])


def rotate(points, angle, about=(0.0, 0.0)) -> np.ndarray:
    """Rotate (k, 2) `points` by `angle` rad about the point `about`."""
    p = np.asarray(points, float) - about
    c, s = math.cos(angle), math.sin(angle)
    return p @ np.array([[c, s], [-s, c]]) + about


def quad(corners, u, v) -> np.ndarray:
    """Bilinear map of unit-square coordinates (u, v) into a quadrilateral.

    `corners` are (top-left, top-right, bottom-right, bottom-left); u runs
    left to right and v top to bottom. Used to draw windows and doors on walls
    seen in perspective.
    """
    tl, tr, br, bl = np.asarray(corners, float)
    u = np.asarray(u, float)[..., None]
    v = np.asarray(v, float)[..., None]
    return (1 - v) * ((1 - u) * tl + u * tr) + v * ((1 - u) * bl + u * br)


def pick_tone(rng, low=0.08, high=0.92, gap=0.12) -> float:
    """A grey level in [low, high] at least `gap` away from the mid-grey background."""
    t = rng.uniform(low, high - 2 * gap)
    return t + 2 * gap if t > 0.5 - gap else t


def contrast(tone, amount=0.3, gap=0.12) -> float:
    """A grey level `amount` darker than `tone`, or lighter when `tone` is dark,
    and at least `gap` away from the mid-grey background."""
    if tone > 0.5:
        shifted = tone - amount
        return shifted if abs(shifted - 0.5) >= gap else 0.5 - gap - 0.03
    shifted = tone + amount
    return shifted if abs(shifted - 0.5) >= gap else 0.5 + gap + 0.03


def two_tones(rng, min_difference=0.25, amount=0.4) -> tuple[float, float]:
    """Two grey levels for two parts of an object: the second is replaced by
    ``contrast(first, amount)`` when they are closer than ``min_difference``."""
    first, second = pick_tone(rng), pick_tone(rng)
    if abs(first - second) < min_difference:
        second = contrast(first, amount)
    return first, second


@dataclass(frozen=True)
class Placement:
    """Random placement of a drawn object on its canvas.

    Attributes
    ----------
    scale : (float, float)
        Range of the object scale (1 = object coordinates [-1, 1] fill the canvas).
    shift : float
        Largest shift of the object centre, in canvas half-widths.
    angle : float
        Largest in-plane rotation, degrees.
    flip : bool
        Whether the object is mirrored left-right half of the time.
    """

    scale: tuple = (0.85, 1.0)
    shift: float = 0.08
    angle: float = 8.0
    flip: bool = True

    def canvas(self, pixels: int, rng) -> Canvas:
        """A blank canvas of `pixels` with a placement drawn from `rng`."""
        return Canvas(
            pixels,
            scale=rng.uniform(*self.scale),
            center=rng.uniform(-self.shift, self.shift, 2),
            angle=math.radians(rng.uniform(-self.angle, self.angle)),
            flip=bool(self.flip and rng.random() < 0.5),
        )


class Canvas:
    """A square supersampled drawing surface in object coordinates.

    It keeps two 8-bit images: the object's premultiplied tone and its coverage.
    Shapes are opaque and painted in order (later shapes hide earlier ones);
    :meth:`erase` cuts holes. Tones are floats in [0, 1].

    Parameters
    ----------
    pixels : int
        Edge of the canvas in pixels.
    scale : float
        Pixels per object unit, in canvas half-widths.
    center : (float, float)
        Position of the object origin, in canvas half-widths from the centre.
    angle : float
        In-plane rotation, radians.
    flip : bool
        Mirror the object left-right.
    """

    def __init__(self, pixels, scale=1.0, center=(0.0, 0.0), angle=0.0, flip=False):
        self.pixels = pixels
        self.tone = Image.new("L", (pixels, pixels), 0)
        self.cover = Image.new("L", (pixels, pixels), 0)
        self._tone = ImageDraw.Draw(self.tone)
        self._cover = ImageDraw.Draw(self.cover)
        half = pixels / 2
        self.unit = half * scale
        c, s = math.cos(angle), math.sin(angle)
        mirror = -1.0 if flip else 1.0
        self._matrix = self.unit * np.array([[c * mirror, -s], [s * mirror, c]])
        self._offset = half * (1.0 + np.asarray(center, float))

    def zoom(self, factor, about=(0.0, 0.0)) -> None:
        """Magnify everything drawn from now on by `factor` about the object point `about`
        (which stays where it is on the canvas); e.g. a tight crop of a face."""
        fixed = self.to_pixels(about)[0]
        self.unit *= factor
        self._matrix = self._matrix * factor
        self._offset = fixed - np.asarray(about, float) @ self._matrix.T

    def mirror(self) -> None:
        """Mirror everything drawn from now on left-right about the object origin."""
        self._matrix = self._matrix * np.array([[-1.0, 1.0]])

    def to_pixels(self, points) -> np.ndarray:
        """Pixel coordinates (k, 2) of object-coordinate `points`."""
        return np.asarray(points, float).reshape(-1, 2) @ self._matrix.T + self._offset

    def polygon(self, points, tone) -> None:
        """Fill the polygon with vertices `points` (k, 2)."""
        xy = self.to_pixels(points).ravel().tolist()
        self._tone.polygon(xy, fill=_byte(tone))
        self._cover.polygon(xy, fill=255)

    def erase(self, points) -> None:
        """Cut the polygon with vertices `points` out of everything drawn so far."""
        xy = self.to_pixels(points).ravel().tolist()
        self._tone.polygon(xy, fill=0)
        self._cover.polygon(xy, fill=0)

    def ellipse(self, cx, cy, rx, ry, tone, angle=0.0) -> None:
        """Fill an ellipse centred at (cx, cy) with semi-axes rx, ry."""
        n = 12 if max(rx, ry) * self.unit < 6 else 32
        self.polygon(ellipse(cx, cy, rx, ry, angle, n), tone)

    def stroke(self, points, width, tone, caps=True) -> None:
        """Draw a polyline of `width` object units through `points`, round-jointed."""
        xy = self.to_pixels(points)
        w = max(1, round(width * self.unit))
        flat = xy.ravel().tolist()
        self._tone.line(flat, fill=_byte(tone), width=w, joint="curve")
        self._cover.line(flat, fill=255, width=w, joint="curve")
        if caps and w > 2:
            r = w / 2
            for x, y in (xy[0], xy[-1]):
                box = (x - r, y - r, x + r, y + r)
                self._tone.ellipse(box, fill=_byte(tone))
                self._cover.ellipse(box, fill=255)

    def paste(self, mask: Image.Image, center, tone) -> None:
        """Paint `tone` through an 8-bit coverage `mask` (e.g. rendered text).

        The mask is centred at `center` (object coordinates); it is not rotated or
        scaled by the canvas placement.
        """
        x, y = self.to_pixels(center)[0]
        box = (round(x - mask.width / 2), round(y - mask.height / 2))
        self.tone.paste(_byte(tone), box + (box[0] + mask.width, box[1] + mask.height), mask)
        self.cover.paste(255, box + (box[0] + mask.width, box[1] + mask.height), mask)

    def reduce(self, factor: int):
        """Box-average down by `factor`: (premultiplied tone, coverage) in [0, 1]."""
        tone = np.asarray(self.tone.reduce(factor), np.float32)
        cover = np.asarray(self.cover.reduce(factor), np.float32)
        return tone / 255.0, cover / 255.0


def _byte(tone) -> int:
    return int(round(255 * min(max(tone, 0.0), 1.0)))


Drawer = Callable[[Canvas, np.random.Generator], None]


def render(draw: Drawer, placement: Placement, n: int, size: int, shapes, backgrounds, *,
           backdrop=None, shading: float = 0.0):
    """Render `n` images of one category.

    Parameters
    ----------
    draw : callable
        ``draw(canvas, rng)`` paints one random instance of the category.
    placement : Placement
        How instances are scaled, shifted, rotated and mirrored.
    n, size : int
        Number of images and their edge in pixels.
    shapes, backgrounds : numpy.random.Generator
        Streams for the objects and for the background textures.
    backdrop : callable, optional
        ``backdrop(rng, n, size)`` → (n, size, size) images in [0, 1] (NaN: keep the
        1/f noise) laid behind the objects instead of the noise (the training diet's
        photographic backgrounds). Drawn from a stream spawned from `backgrounds`.
    shading : float
        Largest slope of a random linear lighting gradient across each object (0: flat).

    Returns
    -------
    images : (n, size, size) float32 array in [0, 1]
    """
    factor = supersampling(size)
    tone = np.empty((n, size, size), np.float32)
    cover = np.empty((n, size, size), np.float32)
    for i in range(n):
        canvas = placement.canvas(size * factor, shapes)
        draw(canvas, shapes)
        tone[i], cover[i] = canvas.reduce(factor)
    background, surface = pink_noise(backgrounds, (2, n, size, size))
    behind = MEAN_LUMINANCE + BACKGROUND_RMS * background
    extra = np.random.default_rng(backgrounds.integers(2**63)) if (backdrop or shading) else None
    if backdrop is not None:
        photo = np.asarray(backdrop(extra, n, size), np.float32)
        behind = np.where(np.isnan(photo), behind, photo)
    if shading:
        yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j].astype(np.float32)
        theta = extra.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
        slope = extra.uniform(0, shading, n).astype(np.float32)[:, None, None]
        tone = tone * np.clip(1 + slope * (np.cos(theta) * xx + np.sin(theta) * yy), 0.2, 2.0)
    images = behind * (1 - cover) + tone
    images += SURFACE_RMS * surface * cover
    return match_statistics(images)


def pink_noise(rng, shape) -> np.ndarray:
    """Gaussian noise with a 1/f amplitude spectrum over the last two axes.

    Every image has zero mean and unit standard deviation.
    """
    white = rng.standard_normal(shape, dtype=np.float32)
    h, w = shape[-2:]
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.rfftfreq(w), indexing="ij"))
    f[0, 0] = np.inf
    noise = np.fft.irfft2(np.fft.rfft2(white) / f, s=(h, w)).astype(np.float32)
    noise -= noise.mean(axis=(-2, -1), keepdims=True)
    noise /= noise.std(axis=(-2, -1), keepdims=True)
    return noise


def match_statistics(images, mean=MEAN_LUMINANCE, rms=RMS_CONTRAST, iterations=4):
    """Give every image the same mean luminance and RMS contrast, within [0, 1].

    Rescales each image to `mean` and standard deviation `rms`, clips to [0, 1],
    and repeats so that the clipping barely moves the statistics.

    Parameters
    ----------
    images : (n, H, W) array
    mean, rms : float
        Target mean and standard deviation of every image.
    iterations : int
        Rescale-and-clip rounds.

    Returns
    -------
    (n, H, W) float32 array in [0, 1]
    """
    x = np.asarray(images, np.float32)
    for _ in range(iterations):
        m = x.mean(axis=(1, 2), keepdims=True)
        s = x.std(axis=(1, 2), keepdims=True)
        x = np.clip((x - m) * (rms / np.maximum(s, 1e-6)) + mean, 0.0, 1.0)
    return x
