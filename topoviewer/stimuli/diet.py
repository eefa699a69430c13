"""A procedural training diet: the localizer's categories plus more object
classes, drawn by the same pipeline, for training small topographic models
without downloading a data set.

Train and validation images come from disjoint random streams, and both are
disjoint from the localizer's, so a model is never tested on the images it was
trained on.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from topoviewer.errors import TopoviewerError
from topoviewer.stimuli._draw import (
    SPLITS,
    Placement,
    arc,
    check_count,
    check_size,
    contrast,
    ellipse,
    match_statistics,
    pick_tone,
    quad,
    render,
    rotate,
    rounded_box,
    streams,
    two_tones,
)
from topoviewer.stimuli.files import StimulusSet
from topoviewer.stimuli.localizer import (
    DRAWERS,
    LOCALIZER_CATEGORIES,
    draw_face,
    random_face_expression,
    random_face_identity,
)
from topoviewer.stimuli.photos import face_context_crops, face_photo_crops, photo_crops


#: Version of the diet; it names the training data in a model's metadata.
DIET_VERSION = "procedural diet v2"

#: Domain-randomisation settings of the diet (module constants so that experiments can vary them).
DIET_OPTIONS = {
    "photo_faces": 0.8,      # share of faces drawn photo-like (shadowed sockets, dark brows/mouth)
    "tight_faces": 0.65,     # share of faces zoomed to a tight crop (the face fills the image)
    "tight_zoom": (1.7, 2.5),
    "photo_backdrop": 0.5,   # share of images (every category) laid on a natural-photo crop
    "shading": 0.6,          # largest lighting-gradient slope across objects
    "blur": 0.5,             # share of images blurred (σ up to 1 px at 32 px)
    "contrast": (0.5, 1.4),  # RMS-contrast factor range (log-uniform), every image
    "gamma": (0.7, 1.4),     # gamma range (log-uniform), every image
    "noise": 0.03,           # largest pixel-noise σ
    "occlude": 0.3,          # share of images with a random erasing: a flat-toned half-plane or box
    "lowres": 0.0,           # share of images seen at a lower resolution (down- then up-sampled)
    "lowres_scale": (0.5, 0.85),  # the lower resolution, as a fraction of the image edge
    "yaw_power": 2.0,        # photo-like faces' yaw = 90° · u**yaw_power (larger: more frontal)
    "real_faces": 0.0,       # share of faces that are augmented crops of photographed faces (FACE_PHOTOS)
    "real_face_warp": 0.0,   # reshaping of the photographed faces (proportions, feature positions; 0.1 = 10 %)
    "face_context": 0.0,     # share of clutter cut from the FACE_PHOTOS beside their faces (hard negatives)
}


def training_diet(split: str = "train", per_category: int = 500, size: int = 32,
                  seed: int = 0, options: dict | None = None) -> StimulusSet:
    """Generate the procedural training diet.

    Parameters
    ----------
    split : {"train", "val"}
        Which split; the two never share an image.
    per_category : int
        Images per category.
    size : int
        Edge of the square grayscale images, in pixels (16 to 1024).
    seed : int
        Non-negative seed; the same (split, seed) gives identical images.
    options : dict, optional
        Settings over :data:`DIET_OPTIONS` (a recipe's ``diet``), e.g. ``{"real_faces": 0.6}``:
        that share of the faces becomes augmented crops of the photographed faces of
        :data:`~topoviewer.stimuli.photos.FACE_PHOTOS`; every other image stays as without it.

    Returns
    -------
    StimulusSet
        ``len(DIET_CATEGORIES) * per_category`` float32 images in [0, 1],
        grouped by category, named e.g. ``"training_diet(split=train,seed=0,size=32)"``.

    Notes
    -----
    Diet v2 (:data:`DIET_VERSION`) randomises the domain so that what is learned
    transfers to photographs: 80 % of the faces are drawn photo-like and 65 % are tight
    crops; half of all images lie on crops of natural photographs (:mod:`.photos`, no
    faces) instead of 1/f noise; objects get a random lighting gradient; every image gets
    random blur, contrast, gamma and noise; and a ``clutter`` category of plain
    natural-photo crops (no object) teaches that photographic texture alone is not a
    category. The settings are :data:`DIET_OPTIONS`.
    """
    if split not in SPLITS:
        raise TopoviewerError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    name = f"training_diet(split={split},seed={seed},size={size}"
    if per_category != 500:
        name += f",per_category={per_category}"
    size = check_size(size)
    per_category = check_count(per_category, "per_category")
    opts = diet_options(options)
    name += "".join(f",{k}={v}" for k, v in sorted((options or {}).items()) if v != DIET_OPTIONS[k])
    images = []
    for c in DIET_CATEGORIES:
        shapes, backgrounds = streams(seed, "diet", split, c)
        if c == "clutter":
            x = photo_crops(backgrounds, per_category, size, scale=(0.05, 0.7))
            if opts["face_context"]:
                _replace_share(x, backgrounds, opts["face_context"], face_context_crops)
            x = match_statistics(x)
        else:
            draw, placement = DIET_DRAWERS[c]
            if c == "faces":
                draw = partial(draw, opts=opts)
            x = render(draw, placement, per_category, size, shapes, backgrounds,
                       backdrop=partial(_photo_backdrop, share=opts["photo_backdrop"]) if opts["photo_backdrop"] else None,
                       shading=opts["shading"])
            if c == "faces" and opts["real_faces"]:
                _replace_share(x, backgrounds, opts["real_faces"],
                               partial(face_photo_crops, warp=opts["real_face_warp"]))
        images.append(_photometric(x, np.random.default_rng(shapes.integers(2**63)), opts))
    labels = np.repeat(np.arange(len(DIET_CATEGORIES)), per_category)
    return StimulusSet(np.concatenate(images), labels, list(DIET_CATEGORIES), name + ")")


def _replace_share(x, stream, share, make):
    """Replace a random `share` of the images `x` in place by ``make(rng, n, size)``.

    The rng is seeded from one draw of `stream`, so every other image stays as it is without it.
    """
    rng = np.random.default_rng(stream.integers(2**63))
    keep = rng.random(len(x)) < share
    x[keep] = make(rng, int(keep.sum()), x.shape[-1])


def diet_options(options: dict | None = None) -> dict:
    """:data:`DIET_OPTIONS` with a recipe's ``diet`` settings over them (unknown names refused)."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(DIET_OPTIONS))
    if unknown:
        raise TopoviewerError(f"unknown diet setting(s) {', '.join(unknown)}; expected some of: "
                              f"{', '.join(sorted(DIET_OPTIONS))}")
    for name, of in (("real_faces", "faces"), ("face_context", "clutter")):
        share = options.get(name, 0.0)
        if isinstance(share, bool) or not (isinstance(share, (int, float)) and 0.0 <= share <= 1.0):
            raise TopoviewerError(f"diet setting {name} is a share of the {of} between 0 and 1, got {share!r}")
    warp = options.get("real_face_warp", 0.0)
    if isinstance(warp, bool) or not (isinstance(warp, (int, float)) and 0.0 <= warp <= 0.3):
        raise TopoviewerError(f"diet setting real_face_warp is a fraction of the image between 0 and 0.3 "
                              f"(0.05: features move by 1–2 px at 32 px), got {warp!r}")
    return {**DIET_OPTIONS, **options}


def _photo_backdrop(rng, n, size, share):
    """Natural-photo crops behind a random share of the images (NaN: keep the noise)."""
    crops = photo_crops(rng, n, size, scale=(0.1, 0.8))
    m = crops.mean(axis=(1, 2), keepdims=True)
    s = crops.std(axis=(1, 2), keepdims=True)
    crops = np.clip(0.5 + (crops - m) * (rng.uniform(0.05, 0.2, (n, 1, 1)) / np.maximum(s, 1e-3)), 0, 1)
    keep = rng.random(n) < share
    crops[~keep] = np.nan
    return crops


def _photometric(x, rng, opts):
    """Random blur, contrast, gamma and pixel noise per image (domain randomisation)."""
    from scipy.ndimage import gaussian_filter
    from skimage.transform import resize

    x = np.array(x, np.float32)
    n, size = len(x), x.shape[-1]
    blur = rng.random(n) < opts["blur"]
    lowres = rng.random(n) < opts["lowres"] if opts["lowres"] else np.zeros(n, bool)
    sigma = rng.uniform(0.3, 1.0, n) * size / 32
    lo, hi = np.log(opts["contrast"])
    c = np.exp(rng.uniform(lo, hi, n)).astype(np.float32)
    lo, hi = np.log(opts["gamma"])
    g = np.exp(rng.uniform(lo, hi, n)).astype(np.float32)
    noise = rng.uniform(0, opts["noise"], n).astype(np.float32)
    eps = rng.standard_normal(x.shape, dtype=np.float32)
    occlude = rng.random(n) < opts["occlude"]
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j].astype(np.float32)
    for i in range(n):
        if occlude[i]:
            # random erasing (Zhong et al. 2017): a flat, mostly dark region with straight edges
            tone = rng.uniform(0.0, 0.15) if rng.random() < 0.7 else rng.uniform(0.0, 1.0)
            if rng.random() < 0.5:
                a = rng.uniform(0, 2 * np.pi)
                mask = np.cos(a) * xx + np.sin(a) * yy > rng.uniform(0.2, 0.9)
            else:
                cx, cy = rng.uniform(-1, 1, 2)
                w, h = rng.uniform(0.3, 1.0, 2)
                mask = (np.abs(xx - cx) < w / 2) & (np.abs(yy - cy) < h / 2)
            x[i][mask] = tone
        if blur[i]:
            x[i] = gaussian_filter(x[i], sigma[i])
        if lowres[i]:
            small = max(4, int(round(size * rng.uniform(*opts["lowres_scale"]))))
            x[i] = resize(resize(x[i], (small, small), order=1, anti_aliasing=True), (size, size), order=1)
        m = x[i].mean()
        xi = np.clip(m + (x[i] - m) * c[i], 0, 1) ** g[i]
        x[i] = np.clip(xi + noise[i] * eps[i], 0, 1)
    return x


def _draw_diet_face(canvas, rng, opts=DIET_OPTIONS):
    """A face as in the localizer, or photo-like, or a tight crop of either."""
    photo = rng.random() < opts["photo_faces"]
    if rng.random() < opts["tight_faces"]:
        canvas.zoom(rng.uniform(*opts["tight_zoom"]), (rng.uniform(-0.04, 0.04), rng.uniform(-0.06, 0.06)))
    yaw = (math.pi / 2) * rng.random() ** (opts["yaw_power"] if photo else 1.3)
    draw_face(canvas, random_face_identity(rng), yaw, random_face_expression(rng), photo=photo)


# ---------------------------------------------------------------- animals

def _draw_quadruped(canvas, rng):
    """A four-legged animal in side view, facing right."""
    fur = pick_tone(rng)
    far = contrast(fur, 0.1)
    half, tall = rng.uniform(0.38, 0.55), rng.uniform(0.14, 0.22)
    leg = rng.uniform(0.28, 0.48)
    y = 0.75 - leg - tall * 0.5
    stride = rng.uniform(0, 30)
    legs = [(0.72 * half, stride), (-0.72 * half, -stride), (0.62 * half, -stride), (-0.62 * half, stride)]
    width = rng.uniform(0.06, 0.09)

    def leg_at(x, swing, tone):
        knee = (x + leg * 0.5 * math.sin(math.radians(swing)), y + tall * 0.3 + leg * 0.5)
        foot = (knee[0] - leg * 0.1 * math.copysign(1, x), 0.75)
        canvas.stroke([(x, y + tall * 0.3), knee, foot], width, tone)

    for x, swing in legs[:2]:
        leg_at(x, swing, far)
    tail, droop = rng.uniform(0.15, 0.4), rng.uniform(-0.8, 1.0)
    root = (-half * 0.95, y - tall * 0.4)
    canvas.stroke([root, (root[0] - tail * 0.6, root[1] + tail * 0.5 * droop),
                   (root[0] - tail, root[1] + tail * droop)], rng.uniform(0.03, 0.07), fur)
    canvas.ellipse(0, y, half, tall, fur)
    for x, swing in legs[2:]:
        leg_at(x, swing, fur)
    neck = rng.uniform(0.12, 0.35)
    angle = math.radians(rng.uniform(25, 70))
    head = (half * 0.85 + neck * math.cos(angle), y - tall * 0.3 - neck * math.sin(angle))
    canvas.stroke([(half * 0.7, y - tall * 0.2), head], tall * rng.uniform(0.7, 1.1), fur)
    hr = rng.uniform(0.09, 0.14)
    snout = rng.uniform(0.08, 0.2)
    canvas.ellipse(head[0], head[1], hr, hr * 0.85, fur)
    canvas.polygon([(head[0], head[1] - hr * 0.6), (head[0] + hr + snout, head[1] + hr * 0.1),
                    (head[0] + hr + snout, head[1] + hr * 0.6), (head[0], head[1] + hr * 0.8)], fur)
    ear = rng.uniform(0.06, 0.14)
    canvas.polygon([(head[0] - hr * 0.6, head[1] - hr * 0.5), (head[0] - hr * 0.1, head[1] - hr * 0.7),
                    (head[0] - hr * 0.6, head[1] - hr * 0.7 - ear)], far)
    canvas.ellipse(head[0] + hr * 0.3, head[1] - hr * 0.2, 0.02, 0.02, contrast(fur, 0.5))
    canvas.ellipse(head[0] + hr + snout, head[1] + hr * 0.25, 0.025, 0.02, contrast(fur, 0.5))


def _draw_bird(canvas, rng):
    """A perched or flying bird in side view."""
    feathers = pick_tone(rng)
    dark = contrast(feathers, 0.3)
    rx, ry = rng.uniform(0.28, 0.38), rng.uniform(0.15, 0.21)
    tilt = rng.uniform(-0.5, -0.1)
    flying = rng.random() < 0.35
    if not flying:
        branch = pick_tone(rng)
        canvas.stroke([(-0.9, 0.55), (0.9, 0.5)], 0.05, branch)
        for dx in (-0.05, 0.08):
            canvas.stroke([(dx, 0.1), (dx, 0.5), (dx + 0.07, 0.52)], 0.025, dark)
    tail = rotate([(-rx * 0.8, -0.03), (-rx - rng.uniform(0.2, 0.35), -0.08),
                   (-rx - rng.uniform(0.2, 0.35), 0.1), (-rx * 0.8, 0.06)], tilt)
    canvas.polygon(tail + (0, 0.05), dark)
    canvas.ellipse(0, 0.05, rx, ry, feathers, tilt)
    hr = rng.uniform(0.1, 0.14)
    head = rotate([(rx * 0.85, -ry * 0.4)], tilt)[0] + (0, 0.05) - (0, hr * 0.6)
    canvas.ellipse(head[0], head[1], hr, hr, feathers)
    beak = rng.uniform(0.08, 0.2)
    canvas.polygon([(head[0] + hr * 0.7, head[1] - hr * 0.35), (head[0] + hr + beak, head[1] + hr * 0.1),
                    (head[0] + hr * 0.7, head[1] + hr * 0.35)], contrast(feathers, 0.45))
    canvas.ellipse(head[0] + hr * 0.3, head[1] - hr * 0.2, 0.025, 0.025, contrast(feathers, 0.6))
    if flying:
        span = rng.uniform(0.45, 0.7)
        lift = rng.uniform(-0.3, 0.2)
        for side, tone in ((1, dark), (-1, contrast(feathers, 0.15))):
            canvas.polygon([(-0.12, 0.0), (0.15, -0.02), (0.05 + side * 0.1, -span),
                            (-0.2 + side * 0.05, -span * (0.85 + lift))], tone)
    else:
        canvas.ellipse(-0.05, 0.05, rx * 0.75, ry * 0.55, dark, tilt)


def _draw_fish(canvas, rng):
    """A fish in side view: lens-shaped body, forked tail, fins, eye and gill."""
    scales = pick_tone(rng)
    fin = contrast(scales, rng.uniform(0.15, 0.35))
    length, depth = rng.uniform(0.5, 0.65), rng.uniform(0.17, 0.33)
    t = np.linspace(0, 1, 14)
    x = length - t * (2 * length - 0.1)
    profile = depth * np.sin(np.pi * (0.08 + 0.92 * t)) ** 0.8 + 0.02
    fork = rng.uniform(0.15, 0.3)
    tail_x = x[-1]
    canvas.polygon([(tail_x + 0.05, 0), (tail_x - fork * 1.3, -fork), (tail_x - fork * 0.7, 0),
                    (tail_x - fork * 1.3, fork)], fin)
    top = rng.uniform(-0.2, 0.1)
    canvas.polygon([(top + 0.18, -depth * 0.85), (top - 0.2, -depth - rng.uniform(0.08, 0.2)),
                    (top - 0.25, -depth * 0.75)], fin)
    canvas.polygon([(0.0, depth * 0.85), (-0.15, depth + 0.1), (-0.2, depth * 0.7)], fin)
    canvas.polygon(np.concatenate([np.column_stack([x, -profile]),
                                   np.column_stack([x[::-1], profile[::-1]])]), scales)
    if rng.random() < 0.4:
        for sx in np.linspace(-0.3, 0.25, rng.integers(2, 5)):
            h = depth * math.sin(math.pi * (length - sx) / (2 * length)) * 0.8
            canvas.stroke([(sx, -h), (sx - 0.04, h)], 0.05, contrast(scales, 0.25))
    canvas.ellipse(length - 0.13, -depth * 0.2, 0.11, 0.11, contrast(scales, 0.2))
    canvas.stroke(arc(length - 0.13, 0, 0.1, depth * 0.6, -1.2, 1.2, 8), 0.02, contrast(scales, 0.35))
    canvas.ellipse(length - 0.16, -depth * 0.25, 0.045, 0.045, 0.9 if scales < 0.5 else 0.1)
    canvas.polygon([(0.1, 0.02), (-0.12, 0.08), (-0.02, 0.12)], fin)


# ------------------------------------------------------------------ plants

def _draw_tree(canvas, rng):
    """A broad-leaved tree, a conifer or a palm."""
    bark, leaves = two_tones(rng, min_difference=0.3)
    kind = rng.integers(3)
    width = rng.uniform(0.05, 0.1)
    if kind == 2:
        bend = rng.uniform(-0.3, 0.3)
        top = (bend, -0.4)
        canvas.stroke([(0, 0.9), (bend * 0.4, 0.2), top], width * 1.2, bark)
        for a in np.linspace(-np.pi + 0.25, -0.25, rng.integers(6, 9)):
            frond = rng.uniform(0.45, 0.6)
            inner = (top[0] + 0.55 * frond * math.cos(a), top[1] + 0.55 * frond * math.sin(a))
            droop = a + (0.7 if math.cos(a) > 0 else -0.7)
            outer = (inner[0] + 0.45 * frond * math.cos(droop), inner[1] + 0.45 * frond * math.sin(droop))
            canvas.ellipse((top[0] + inner[0]) / 2, (top[1] + inner[1]) / 2, 0.3 * frond, 0.055, leaves, a)
            canvas.ellipse((inner[0] + outer[0]) / 2, (inner[1] + outer[1]) / 2, 0.25 * frond, 0.045,
                           leaves, droop)
        return
    if kind == 1:
        canvas.polygon([(-width, 0.9), (width, 0.9), (width, 0.55), (-width, 0.55)], bark)
        layers = rng.integers(3, 5)
        span = rng.uniform(0.4, 0.6)
        for i in range(layers):
            y = 0.6 - i * 1.35 / layers
            w = span * (1 - i / (layers + 1))
            canvas.polygon([(-w, y), (w, y), (0, y - 1.7 / layers)], leaves)
        return
    centre, r = rng.uniform(-0.35, -0.2), rng.uniform(0.32, 0.45)
    canvas.polygon([(-width * 1.6, 0.9), (width * 1.6, 0.9), (width * 0.6, centre), (-width * 0.6, centre)],
                   bark)
    for _ in range(rng.integers(4, 8)):
        dx, dy = rng.uniform(-0.35, 0.35), rng.uniform(-0.15, 0.15)
        canvas.ellipse(dx, centre + dy, r * rng.uniform(0.55, 0.85), r * rng.uniform(0.5, 0.75), leaves)
    canvas.ellipse(0, centre, r, r * 0.85, leaves)


def _draw_flower(canvas, rng):
    """One to three flowers on stems with leaves: daisies, tulips or cups."""
    stem = pick_tone(rng)
    petal = pick_tone(rng)
    if abs(stem - petal) < 0.25:
        petal = contrast(stem, 0.4)
    heart = contrast(petal, 0.45)
    count = rng.choice(3, p=(0.6, 0.25, 0.15)) + 1
    for i in range(count):
        base = (rng.uniform(-0.15, 0.15), 0.95)
        head = (0.55 * (i - (count - 1) / 2) + rng.uniform(-0.1, 0.1), rng.uniform(-0.55, -0.2))
        mid = ((base[0] + head[0]) / 2 + rng.uniform(-0.15, 0.15), (base[1] + head[1]) / 2)
        canvas.stroke([base, mid, head], 0.04, stem)
        side = 1 if rng.random() < 0.5 else -1
        canvas.ellipse(mid[0] + side * 0.1, mid[1] + 0.15, 0.13, 0.05, stem, side * 0.5)
        r = rng.uniform(0.18, 0.3) / math.sqrt(count)
        if rng.random() < 0.3:
            canvas.polygon([(head[0] - r, head[1] - r * 1.2), (head[0] - r * 0.3, head[1] - r * 0.6),
                            (head[0], head[1] - r * 1.3), (head[0] + r * 0.3, head[1] - r * 0.6),
                            (head[0] + r, head[1] - r * 1.2), (head[0] + r * 0.8, head[1] + r * 0.2),
                            (head[0], head[1] + r * 0.4), (head[0] - r * 0.8, head[1] + r * 0.2)], petal)
            continue
        petals = rng.integers(5, 13)
        for a in np.linspace(0, 2 * np.pi, petals, endpoint=False) + rng.uniform(0, 1):
            canvas.ellipse(head[0] + r * 0.6 * math.cos(a), head[1] + r * 0.6 * math.sin(a),
                           r * 0.55, r * 0.22 * (1 + 4 / petals), petal, a)
        canvas.ellipse(head[0], head[1], r * 0.35, r * 0.35, heart)


# ---------------------------------------------------------------- artefacts

def _draw_chair(canvas, rng):
    """A chair or armchair seen from three-quarters, or a bar stool."""
    wood = pick_tone(rng)
    side = contrast(wood, 0.15)
    w, d = rng.uniform(0.28, 0.38), rng.uniform(0.12, 0.2)
    seat_y, leg_y = rng.uniform(0.05, 0.2), 0.85
    seat = [(-w - d, seat_y - d), (w - d, seat_y - d), (w + d, seat_y + d), (-w + d, seat_y + d)]
    kind = rng.integers(3)
    if kind == 2:
        top = seat_y - 0.25
        for x in (-0.3, 0.05, 0.3):
            canvas.stroke([(x * 0.5, top), (x, leg_y)], 0.05, side)
        canvas.stroke([(-0.22, 0.5), (0.22, 0.5)], 0.03, side)
        canvas.ellipse(0, top + 0.04, 0.3, 0.1, side)
        canvas.ellipse(0, top, 0.3, 0.1, wood)
        return
    thick = 0.05 if kind == 0 else 0.1
    for x, y in seat:
        canvas.stroke([(x, y), (x, leg_y + (y - seat_y) * 0.5)], thick, side)
    back_top = rng.uniform(-0.85, -0.55)
    back = [(-w - d, back_top), (w - d, back_top), (w - d, seat_y - d), (-w - d, seat_y - d)]
    canvas.polygon(back, wood)
    if kind == 0 and rng.random() < 0.6:
        for u in np.linspace(0.2, 0.8, rng.integers(2, 4)):
            canvas.erase(quad(back, [u - 0.06, u + 0.06, u + 0.06, u - 0.06], [0.2, 0.2, 0.85, 0.85]))
    canvas.polygon(seat, contrast(wood, 0.1))
    canvas.polygon([seat[3], seat[2], (seat[2][0], seat[2][1] + thick), (seat[3][0], seat[3][1] + thick)],
                   side)
    if kind == 1:
        for x in (-w, w):
            canvas.polygon([(x - d - 0.05, seat_y - d - 0.25), (x - d + 0.05, seat_y - d - 0.25),
                            (x + d + 0.05, seat_y + d - 0.2), (x + d - 0.05, seat_y + d - 0.2)], wood)


def _draw_cup(canvas, rng):
    """A mug, a tea cup on its saucer, a wine glass or a bottle."""
    tone = pick_tone(rng)
    inside = contrast(tone, 0.3)
    kind = rng.integers(4)
    if kind == 0:
        w, top, bottom = rng.uniform(0.28, 0.38), rng.uniform(-0.5, -0.35), rng.uniform(0.4, 0.55)
        cy = (top + bottom) / 2
        canvas.ellipse(w + 0.05, cy, 0.2, (bottom - top) * 0.3, tone)
        canvas.erase(ellipse(w + 0.05, cy, 0.11, (bottom - top) * 0.18, 0, 20))
        canvas.polygon(rounded_box(-w, top, w, bottom, 0.08), tone)
        canvas.ellipse(0, top, w, 0.07, inside)
    elif kind == 1:
        canvas.ellipse(0, 0.45, 0.75, 0.12, contrast(tone, 0.15))
        w = rng.uniform(0.4, 0.5)
        canvas.ellipse(w - 0.02, 0.05, 0.15, 0.12, tone)
        canvas.erase(ellipse(w - 0.02, 0.05, 0.08, 0.06, 0, 20))
        canvas.polygon(arc(0, -0.1, w, 0.5, 0, np.pi, 14), tone)
        canvas.ellipse(0, -0.1, w, 0.08, inside)
    elif kind == 2:
        w = rng.uniform(0.22, 0.32)
        canvas.polygon(arc(0, -0.45, w, 0.45, 0, np.pi, 14), tone)
        canvas.ellipse(0, -0.45, w, 0.06, inside)
        canvas.stroke([(0, 0.0), (0, 0.7)], 0.05, tone)
        canvas.ellipse(0, 0.72, 0.25, 0.06, tone)
    else:
        w = rng.uniform(0.16, 0.25)
        neck = rng.uniform(0.06, 0.09)
        shoulder = rng.uniform(-0.35, -0.15)
        canvas.polygon(rounded_box(-w, shoulder, w, 0.85, 0.06), tone)
        canvas.polygon([(-w, shoulder + 0.02), (w, shoulder + 0.02), (neck, shoulder - 0.25),
                        (-neck, shoulder - 0.25)], tone)
        canvas.polygon([(-neck, shoulder - 0.24), (neck, shoulder - 0.24), (neck, -0.8), (-neck, -0.8)],
                       tone)
        canvas.polygon([(-neck - 0.02, -0.8), (neck + 0.02, -0.8), (neck + 0.02, -0.9),
                        (-neck - 0.02, -0.9)], inside)
        canvas.polygon([(-w, 0.15), (w, 0.15), (w, 0.5), (-w, 0.5)], inside)


def _draw_clock(canvas, rng):
    """A wall clock, alarm clock or square clock showing a random time."""
    rim = pick_tone(rng)
    face = contrast(rim, rng.uniform(0.35, 0.6))
    r = rng.uniform(0.5, 0.7)
    kind = rng.integers(3)
    if kind == 1:
        for sx in (-1, 1):
            canvas.ellipse(sx * r * 0.6, -r * 0.85, r * 0.28, r * 0.22, rim, sx * 0.5)
            canvas.stroke([(sx * r * 0.5, r * 0.7), (sx * r * 0.7, r * 1.15)], 0.06, rim)
    if kind == 2:
        canvas.polygon(rounded_box(-r, -r, r, r, r * 0.15), rim)
    else:
        canvas.ellipse(0, 0, r, r, rim)
    canvas.ellipse(0, 0, r * 0.86, r * 0.86, face)
    for k in range(12):
        a = k * np.pi / 6
        inner = 0.62 if k % 3 else 0.55
        canvas.stroke([(r * inner * math.cos(a), r * inner * math.sin(a)),
                       (r * 0.76 * math.cos(a), r * 0.76 * math.sin(a))], 0.03, rim, caps=False)
    hour, minute = rng.uniform(0, 2 * np.pi, 2)
    for a, length, width in ((hour, 0.42, 0.06), (minute, 0.68, 0.035)):
        canvas.stroke([(0, 0), (r * length * math.sin(a), -r * length * math.cos(a))], width, rim)
    canvas.ellipse(0, 0, 0.04, 0.04, rim)


def _draw_shoe(canvas, rng):
    """A sneaker, a boot or a high-heeled shoe in side view, toe to the right."""
    upper, sole = two_tones(rng)
    kind = rng.integers(3)
    if kind == 2:
        canvas.polygon([(-0.7, -0.15), (-0.55, -0.18), (0.2, 0.28), (0.75, 0.3), (0.75, 0.38),
                        (0.15, 0.38), (-0.5, 0.0), (-0.55, 0.55), (-0.65, 0.55), (-0.7, -0.05)], sole)
        canvas.polygon([(-0.7, -0.15), (-0.6, -0.35), (-0.45, -0.3), (0.1, 0.08), (0.55, 0.15),
                        (0.75, 0.3), (0.2, 0.28), (-0.55, -0.18)], upper)
        return
    top = -0.7 if kind == 1 else rng.uniform(-0.3, -0.15)
    canvas.polygon([(-0.75, 0.25), (0.75, 0.25), (0.8, 0.32), (0.72, 0.4), (-0.75, 0.4)], sole)
    outline = [(-0.75, 0.27), (-0.78, 0.0), (-0.68, top), (-0.3, top), (-0.25, top + 0.12),
               (0.05, -0.05 + (top + 0.3) * 0.2), (0.5, 0.05), (0.75, 0.15), (0.78, 0.27)]
    canvas.polygon(outline, upper)
    lace = contrast(upper, 0.35)
    for k in range(3 if kind == 0 else 5):
        x = -0.2 + 0.08 * k
        y = top + 0.15 + (0.05 - top) * k / 6 if kind == 1 else -0.02 + 0.03 * k
        canvas.stroke([(x - 0.05, y - 0.02), (x + 0.07, y + 0.03)], 0.025, lace)
    canvas.stroke([(-0.7, 0.2), (0.7, 0.2)], 0.02, contrast(upper, 0.2))


def _draw_fruit(canvas, rng):
    """An apple, a pear, a banana, a bunch of grapes or cherries, or a lemon."""
    skin = pick_tone(rng)
    stalk = contrast(skin, 0.4)
    kind = rng.integers(6)
    if kind == 0:
        r = rng.uniform(0.45, 0.6)
        canvas.ellipse(-r * 0.35, 0.05, r * 0.7, r * 0.85, skin)
        canvas.ellipse(r * 0.35, 0.05, r * 0.7, r * 0.85, skin)
        canvas.stroke([(0, -r * 0.6), (0.06, -r * 1.05)], 0.05, stalk)
        canvas.ellipse(0.2, -r * 0.95, 0.16, 0.06, stalk, -0.5)
    elif kind == 1:
        r = rng.uniform(0.35, 0.45)
        canvas.ellipse(0, 0.3, r, r * 0.95, skin)
        canvas.ellipse(0, -0.15, r * 0.6, r * 0.75, skin)
        canvas.stroke([(0, -0.4), (0.05, -0.65)], 0.05, stalk)
    elif kind == 2:
        outer = arc(0, -0.6, 0.8, 1.1, 0.35, np.pi - 0.35, 16)
        inner = arc(0, -0.75, 0.7, 0.95, np.pi - 0.45, 0.45, 16)
        canvas.polygon(np.concatenate([outer, inner]), skin)
        canvas.stroke([(outer[-1][0], outer[-1][1]), (outer[-1][0] - 0.08, outer[-1][1] - 0.1)], 0.06, stalk)
    elif kind == 3:
        r = rng.uniform(0.1, 0.13)
        rows = rng.integers(4, 6)
        for i in range(rows):
            for j in range(rows - i):
                x = (j - (rows - i - 1) / 2) * r * 1.8 + rng.uniform(-0.02, 0.02)
                canvas.ellipse(x, -0.45 + i * r * 1.6, r, r, contrast(skin, 0.08 * (i % 2)))
        canvas.stroke([(0, -0.55), (0.05, -0.8)], 0.04, stalk)
    elif kind == 4:
        r = rng.uniform(0.17, 0.23)
        top = (0.05, -0.7)
        for x in (-0.25, 0.25):
            canvas.stroke([(x, 0.35), (x * 0.4, -0.2), top], 0.03, stalk)
            canvas.ellipse(x, 0.4, r, r, skin)
    else:
        rx, ry = rng.uniform(0.5, 0.65), rng.uniform(0.35, 0.45)
        canvas.ellipse(0, 0, rx, ry, skin, rng.uniform(-0.3, 0.3))
        canvas.ellipse(rx * 0.95, 0, 0.08, 0.06, skin)
        canvas.ellipse(-rx * 0.95, 0, 0.08, 0.06, skin)


def _draw_boat(canvas, rng):
    """A sailing boat, motor boat or ship on a wavy waterline."""
    hull = pick_tone(rng)
    detail = contrast(hull, 0.35)
    deck = rng.uniform(0.1, 0.25)
    length = rng.uniform(0.7, 0.85)
    canvas.polygon([(-length, deck), (length + 0.1, deck - 0.08), (length * 0.65, deck + 0.3),
                    (-length * 0.8, deck + 0.3)], hull)
    canvas.stroke([(-length * 0.9, deck + 0.08), (length * 0.95, deck + 0.03)], 0.03, detail)
    kind = rng.integers(3)
    if kind == 0:
        mast = rng.uniform(-0.3, 0.1)
        top = rng.uniform(-0.9, -0.7)
        sail = pick_tone(rng)
        canvas.polygon([(mast - 0.03, top + 0.05), (mast - 0.03, deck - 0.05),
                        (mast - rng.uniform(0.4, 0.6), deck - 0.05)], sail)
        canvas.polygon([(mast + 0.03, top + 0.1), (mast + 0.03, deck - 0.05),
                        (mast + rng.uniform(0.3, 0.5), deck - 0.05)], contrast(sail, 0.15))
        canvas.stroke([(mast, deck), (mast, top)], 0.03, detail)
    else:
        cabin = [(-length * 0.5, deck), (length * 0.3, deck), (length * 0.15, deck - 0.22),
                 (-length * 0.45, deck - 0.22)]
        canvas.polygon(cabin, contrast(hull, 0.15))
        for u in np.linspace(0.2, 0.8, 4):
            canvas.polygon(quad(cabin, [u - 0.06, u + 0.06, u + 0.06, u - 0.06], [0.3, 0.3, 0.6, 0.6]),
                           detail)
        if kind == 2:
            for x in (-length * 0.35, -length * 0.1):
                canvas.polygon([(x - 0.06, deck - 0.2), (x + 0.06, deck - 0.2), (x + 0.08, deck - 0.45),
                                (x - 0.04, deck - 0.45)], detail)
    x = np.linspace(-1.1, 1.1, 23)
    canvas.stroke(np.column_stack([x, deck + 0.3 + 0.03 * np.sin(x * 14)]), 0.03, contrast(hull, 0.2))


def _draw_plane(canvas, rng):
    """An aeroplane seen from above or from the side."""
    body = pick_tone(rng)
    detail = contrast(body, 0.3)
    length = rng.uniform(0.8, 0.95)
    radius = rng.uniform(0.07, 0.1)
    if rng.random() < 0.6:
        span, sweep = rng.uniform(0.7, 0.9), rng.uniform(0.1, 0.35)
        chord = rng.uniform(0.15, 0.25)
        wing_x = rng.uniform(-0.05, 0.15)
        for side in (-1, 1):
            canvas.polygon([(wing_x + chord, 0), (wing_x + chord - sweep, side * span),
                            (wing_x - sweep - 0.05, side * span), (wing_x - chord * 0.5, 0)], body)
            canvas.polygon([(-length + 0.22, 0), (-length + 0.1, side * 0.28), (-length + 0.02, side * 0.28),
                            (-length + 0.05, 0)], body)
            canvas.ellipse(wing_x - sweep * 0.45, side * span * 0.45, 0.1, 0.045, detail)
        canvas.polygon(np.concatenate([arc(length - 0.2, 0, 0.2, radius, -np.pi / 2, np.pi / 2, 8),
                                       [(-length, radius * 0.5), (-length, -radius * 0.5)]]), body)
        return
    fin = rng.uniform(0.25, 0.4)
    canvas.polygon([(-length + 0.05, 0), (-length - 0.02, -fin), (-length + 0.15, -fin),
                    (-length + 0.35, 0)], body)
    canvas.polygon(np.concatenate([arc(length - 0.2, 0, 0.2, radius * 1.8, -np.pi / 2, np.pi / 2, 8),
                                   [(-length, radius * 0.5), (-length, -radius * 1.2)]]), body)
    canvas.polygon([(0.15, 0.05), (-0.25, 0.1), (-0.35, 0.16), (0.05, 0.12)], detail)
    for x in np.linspace(-length + 0.35, length - 0.35, 9):
        canvas.ellipse(x, -radius * 0.5, 0.02, 0.025, detail)
    canvas.ellipse(length - 0.12, -radius * 0.6, 0.06, 0.035, detail)


def _draw_lamp(canvas, rng):
    """A table lamp, a desk lamp or a floor lamp."""
    tone, shade = two_tones(rng)
    kind = rng.integers(3)
    if kind == 1:
        canvas.polygon(rounded_box(-0.35, 0.75, 0.25, 0.88, 0.04), tone)
        a1, a2 = math.radians(rng.uniform(-30, 10)), math.radians(rng.uniform(40, 80))
        elbow = (-0.05 + 0.75 * math.sin(a1), 0.75 - 0.75 * math.cos(a1))
        head = (elbow[0] + 0.65 * math.sin(a2), elbow[1] - 0.65 * math.cos(a2))
        canvas.stroke([(-0.05, 0.75), elbow, head], 0.04, tone)
        canvas.polygon(rotate([(head[0] - 0.05, head[1] - 0.05), (head[0] + 0.08, head[1] - 0.05),
                               (head[0] + 0.25, head[1] + 0.3), (head[0] - 0.2, head[1] + 0.3)],
                              a2 * 0.4, head), shade)
        return
    top = -0.35 if kind == 0 else -0.7
    base = (0.3, 0.12) if kind == 0 else (0.3, 0.05)
    canvas.polygon(rounded_box(-base[0], 0.88 - base[1], base[0], 0.88, base[1] * 0.5), tone)
    canvas.stroke([(0, 0.85), (0, top)], 0.05 if kind == 2 else 0.08, tone)
    if kind == 0:
        canvas.ellipse(0, 0.5, 0.2, 0.28, tone)
    w_top, w_bottom, h = rng.uniform(0.15, 0.3), rng.uniform(0.35, 0.5), rng.uniform(0.3, 0.45)
    canvas.polygon([(-w_top, top - h), (w_top, top - h), (w_bottom, top), (-w_bottom, top)], shade)


def _draw_key(canvas, rng):
    """A key: a bow with a hole, a shaft and a toothed bit."""
    metal = pick_tone(rng)
    bow = rng.uniform(0.2, 0.3)
    if rng.random() < 0.5:
        canvas.ellipse(-0.55, 0, bow, bow, metal)
    else:
        canvas.polygon(rounded_box(-0.55 - bow, -bow, -0.55 + bow, bow, bow * 0.4), metal)
    canvas.erase(ellipse(-0.62, 0, bow * 0.35, bow * 0.35, 0, 20))
    shaft = rng.uniform(0.05, 0.08)
    canvas.polygon([(-0.4, -shaft), (0.8, -shaft), (0.85, 0), (0.8, shaft), (-0.4, shaft)], metal)
    teeth = rng.integers(3, 7)
    x = np.linspace(0.15, 0.8, teeth + 1)
    depth = rng.uniform(0.05, 0.16, teeth)
    bit = [(0.15, shaft)] + [p for i in range(teeth) for p in ((x[i], shaft + depth[i]),
                                                              (x[i + 1] - 0.03, shaft + depth[i]))]
    canvas.polygon(bit + [(0.8, shaft)], metal)
    canvas.stroke([(-0.3, 0), (0.75, 0)], 0.015, contrast(metal, 0.25))


#: Category → (drawer, placement) of the diet: the localizer's categories plus these.
DIET_DRAWERS = {
    **DRAWERS,
    "faces": (_draw_diet_face, DRAWERS["faces"][1]),
    "quadrupeds": (_draw_quadruped, Placement(scale=(0.85, 1.05), angle=6)),
    "birds": (_draw_bird, Placement(scale=(0.85, 1.05), angle=10)),
    "fish": (_draw_fish, Placement(scale=(0.85, 1.1), angle=15)),
    "trees": (_draw_tree, Placement(scale=(0.85, 1.0), angle=4)),
    "flowers": (_draw_flower, Placement(scale=(0.85, 1.0), angle=8)),
    "chairs": (_draw_chair, Placement(scale=(0.85, 1.05), angle=5)),
    "cups": (_draw_cup, Placement(scale=(0.8, 1.0), angle=6)),
    "clocks": (_draw_clock, Placement(scale=(0.85, 1.1), angle=10)),
    "shoes": (_draw_shoe, Placement(scale=(0.85, 1.05), angle=10)),
    "fruit": (_draw_fruit, Placement(scale=(0.8, 1.0), angle=30)),
    "boats": (_draw_boat, Placement(scale=(0.85, 1.05), angle=5)),
    "planes": (_draw_plane, Placement(scale=(0.85, 1.05), angle=30)),
    "lamps": (_draw_lamp, Placement(scale=(0.85, 1.0), angle=5)),
    "keys": (_draw_key, Placement(scale=(0.85, 1.05), angle=60)),
}
#: The diet's categories: the localizer's, the extra objects, and ``clutter`` (natural-photo crops).
DIET_CATEGORIES = LOCALIZER_CATEGORIES + tuple(c for c in DIET_DRAWERS if c not in DRAWERS) + ("clutter",)
