"""A procedural fLoc-style category localizer (Lee et al. 2020, after Stigliani
et al. 2015): grey-level faces, headless bodies, places, cars, objects
(musical instruments and tools) and words on matched textured backgrounds.

Every image is generated from the seed, so a localizer is reproducible
anywhere without shipping image files. All categories share one pipeline
(:func:`topoviewer.stimuli._draw.render`): objects drawn supersampled and
anti-aliased, laid on 1/f-noise backgrounds with the same statistics, then
every image normalised to the same mean luminance and RMS contrast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from topoviewer.errors import TopoviewerError
from topoviewer.stimuli import _draw
from topoviewer.stimuli._draw import Placement, arc, contrast, ellipse, pick_tone, quad, rotate, two_tones
from topoviewer.stimuli.files import StimulusSet

LOCALIZER_CATEGORIES = ("faces", "bodies", "places", "cars", "objects", "words")


def localizer(size: int = 64, per_category: int = 48, seed: int = 1234,
              categories=LOCALIZER_CATEGORIES) -> StimulusSet:
    """Generate the category localizer.

    Parameters
    ----------
    size : int
        Edge of the square grayscale images, in pixels (16 to 1024).
    per_category : int
        Images per category.
    seed : int
        Non-negative seed; the same seed gives identical images. Localizer
        streams are disjoint from those of :func:`training_diet`.
    categories : sequence of str
        Which of :data:`LOCALIZER_CATEGORIES` to generate, in label order.

    Returns
    -------
    StimulusSet
        ``len(categories) * per_category`` images in [0, 1], float32, grouped
        by category, named e.g. ``"localizer(seed=1234,size=64)"``.
    """
    categories = tuple(categories)
    unknown = [c for c in categories if c not in LOCALIZER_CATEGORIES]
    if unknown or not categories:
        raise TopoviewerError(
            f"localizer categories must be among {', '.join(LOCALIZER_CATEGORIES)}, "
            f"got {list(categories)}"
        )
    name = f"localizer(seed={seed},size={size}"
    if per_category != 48:
        name += f",per_category={per_category}"
    if categories != LOCALIZER_CATEGORIES:
        name += f",categories={'+'.join(categories)}"
    return generate(DRAWERS, categories, per_category, size, seed, "localizer", "train",
                    name + ")")


def generate(drawers, categories, per_category, size, seed, purpose, split, name) -> StimulusSet:
    """Render `per_category` images of each category with its drawer and placement.

    `drawers` maps a category to ``(draw, placement)``; see :func:`_draw.render`.
    """
    size = _draw.check_size(size)
    per_category = _draw.check_count(per_category, "per_category")
    images = [
        _draw.render(*drawers[c], per_category, size, *_draw.streams(seed, purpose, split, c))
        for c in categories
    ]
    labels = np.repeat(np.arange(len(categories)), per_category)
    return StimulusSet(np.concatenate(images), labels, list(categories), name)


# --------------------------------------------------------------------- faces

@dataclass(frozen=True)
class FaceIdentity:
    """What makes one face different from another (object units; head radius ~0.4)."""

    width: float            # head half-width
    height: float           # head half-height
    jaw: float              # chin width relative to the temples
    eye_azimuth: float      # angle of each eye from the midline, rad (eye spacing)
    eye_height: float       # eye level relative to the head centre
    eye_size: float         # eye half-width
    brow_gap: float         # eye-to-eyebrow distance
    nose_length: float
    nose_depth: float       # protrusion of the nose tip, in head half-widths
    mouth_gap: float        # nose-tip-to-mouth distance
    mouth_azimuth: float    # half-width of the mouth, rad
    skin: float             # grey levels of skin and hair
    hair: float
    hair_style: str         # "short", "long", "receding" or "bun"
    hairline: float         # height of the front hairline, in head half-heights
    hair_length: float      # how far the hair reaches down at the back


@dataclass(frozen=True)
class FaceExpression:
    """Facial expression: mouth curvature (+ smile), mouth opening, brow tilt
    (+ inner ends lowered, a frown) and eye opening."""

    smile: float
    mouth_open: float
    brow_tilt: float
    eye_open: float


HAIR_STYLES = ("short", "long", "receding", "bun")


def random_face_identity(rng) -> FaceIdentity:
    """Draw a random face identity."""
    skin = pick_tone(rng, 0.3, 0.88)
    hair = rng.uniform(0.03, 0.25) if rng.random() < 0.8 else rng.uniform(0.7, 0.92)
    if abs(hair - skin) < 0.3:
        hair = contrast(skin, 0.4)
    return FaceIdentity(
        width=rng.uniform(0.33, 0.41), height=rng.uniform(0.44, 0.52), jaw=rng.uniform(0.68, 0.9),
        eye_azimuth=rng.uniform(0.36, 0.5), eye_height=rng.uniform(-0.08, 0.0),
        eye_size=rng.uniform(0.055, 0.075), brow_gap=rng.uniform(0.075, 0.105),
        nose_length=rng.uniform(0.13, 0.19), nose_depth=rng.uniform(0.25, 0.4),
        mouth_gap=rng.uniform(0.08, 0.12), mouth_azimuth=rng.uniform(0.26, 0.4),
        skin=skin, hair=hair, hair_style=HAIR_STYLES[rng.integers(len(HAIR_STYLES))],
        hairline=rng.uniform(0.45, 0.7), hair_length=rng.uniform(-0.05, 0.35),
    )


def random_face_expression(rng) -> FaceExpression:
    """Draw a random expression (neutral, smiling, frowning, surprised, ...)."""
    return FaceExpression(
        smile=rng.uniform(-0.035, 0.06),
        mouth_open=rng.uniform(0.02, 0.07) if rng.random() < 0.3 else 0.0,
        brow_tilt=rng.uniform(-0.035, 0.035), eye_open=rng.uniform(0.65, 1.1),
    )


def draw_face(canvas, face: FaceIdentity, yaw: float, expression: FaceExpression, photo: bool = False) -> None:
    """Paint a head turned by `yaw` rad (0 frontal, pi/2 right profile).

    The head is a deformed ellipsoid centred at (0, -0.12): features sit at an
    azimuth on its surface, move with the yaw, are foreshortened by the cosine
    of their viewing angle and disappear when they turn away. The nose and lips
    protrude, so they break the silhouette near profile.

    With `photo`, the face is drawn as it looks in a photograph: shadowed eye sockets,
    a sclera only a little brighter than the skin, heavier dark brows, a shadowed nose
    side and a dark mouth line (the training diet's photographic faces).
    """
    w, h, s = face.width, face.height, math.sin(yaw)
    cy = -0.08
    back = 1 + 0.3 * s                      # the back of the head grows as it turns into view

    def project(azimuth, y, radius=1.0):
        """Screen (x, y) and visibility of a surface point."""
        angle = np.atleast_1d(np.asarray(azimuth, float)) + yaw
        across = w * np.sqrt(np.clip(1 - (np.asarray(y) / h) ** 2, 0.05, 1))
        x = radius * across * np.sin(angle)
        x = np.where(x < 0, x * back, x)
        return np.column_stack(np.broadcast_arrays(x, np.asarray(y) + cy)), np.cos(angle)

    if face.hair_style == "long":
        cx = -0.3 * w * s
        canvas.polygon(_draw.rounded_box(cx - w * (1.2 + 0.2 * s), cy - h * 1.07,
                                         cx + w * 1.2, cy + h * (1.25 + face.hair_length),
                                         w * 0.9), face.hair)
    elif face.hair_style == "bun":
        canvas.ellipse(-0.55 * w * s, cy - 0.95 * h, 0.15, 0.14, face.hair)
    neck_x = -0.25 * w * s
    canvas.polygon([(neck_x - 0.42 * w, cy + 0.5 * h), (neck_x + 0.42 * w, cy + 0.5 * h),
                    (neck_x + 0.45 * w, cy + 1.6 * h), (neck_x - 0.45 * w, cy + 1.6 * h)],
                   face.skin * 0.85)
    ear_y = cy + face.eye_height + 0.05
    ears = [(a, math.cos(a + yaw)) for a in (-1.5, 1.5)]
    for azimuth, facing in ears:
        if -0.5 < facing <= 0.35:
            canvas.ellipse(w * back * math.sin(azimuth + yaw), ear_y, 0.055, 0.1, face.skin * 0.9)
    outline = _head_outline(w, h, face.jaw, s) + (0, cy)
    canvas.polygon(outline, face.skin)
    canvas.polygon(_hair_cap(face, yaw, back) + (0, cy), face.hair)
    for azimuth, facing in ears:
        if facing > 0.35:
            x = w * math.sin(azimuth + yaw) - 0.12 * w * s
            canvas.ellipse(x, ear_y, 0.06 * (0.4 + 0.6 * facing), 0.1, face.skin * 0.92)
            canvas.ellipse(x, ear_y, 0.02, 0.04, face.skin * 0.55)

    eye_y = face.eye_height
    eye_az = face.eye_size / w
    for side in (-1, 1):
        centre, facing = project(side * face.eye_azimuth, eye_y)
        if facing[0] < 0.25:
            continue
        x, y = centre[0]
        rx = face.eye_size * (0.3 + 0.7 * facing[0])
        ry = face.eye_size * 0.5 * expression.eye_open
        if photo:
            canvas.ellipse(x, y - 0.01, rx * 1.6, face.eye_size * 1.0, face.skin * 0.62)
        canvas.ellipse(x, y, rx, ry, min(0.92, face.skin * 0.8 + 0.2) if photo else 0.92)
        canvas.ellipse(x + 0.35 * rx * s, y, min(rx, ry) * 0.95, ry, 0.08)
        brow = side * (face.eye_azimuth + np.array([-1.2, 0.0, 1.3]) * eye_az)  # inner → outer
        brow_y = eye_y - face.brow_gap + np.array([expression.brow_tilt, -0.012, 0.004])
        points, seen = project(brow, brow_y)
        canvas.stroke(points[seen > 0.1], 0.05 if photo else 0.035,
                      min(face.hair, face.skin - 0.3) * (0.6 if photo else 1.0))

    top, tip = eye_y + 0.01, eye_y + face.nose_length
    nose, _ = project([-0.07, 0.07, 0.09, 0.12, -0.12, -0.09],
                      [top, top, tip - 0.02, tip + 0.03, tip + 0.03, tip - 0.02],
                      [1, 1, 1 + face.nose_depth, 1, 1, 1 + face.nose_depth])
    canvas.polygon(nose, face.skin * (0.72 if photo else 0.85))
    canvas.stroke(nose[[1, 2, 3, 4, 5]] if yaw > 0.25 else nose[2:], 0.014, face.skin * 0.6)
    for side in (-1, 1):
        nostril, facing = project(side * 0.07, tip + 0.012, 1 + 0.5 * face.nose_depth)
        if facing[0] > 0.3:
            canvas.ellipse(*nostril[0], 0.022 * facing[0], 0.013, face.skin * 0.35)

    k = np.linspace(-1, 1, 9)
    mouth_y = tip + face.mouth_gap
    upper = mouth_y - expression.smile * (k**2 - 0.3)
    points, seen = project(k * face.mouth_azimuth, upper, 1.04)
    visible = seen > 0.05
    if expression.mouth_open:
        lower, _ = project(k * face.mouth_azimuth, upper + expression.mouth_open * (1 - k**2), 1.04)
        canvas.polygon(np.concatenate([points[visible], lower[visible][::-1]]), 0.08)
    canvas.stroke(points[visible], 0.045 if photo else 0.03, face.skin * (0.3 if photo else 0.5))


def _head_outline(w, h, jaw, s, n=40):
    """Head silhouette: an ellipse narrowing to the jaw, deeper at the back when turned."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    lower = np.clip(np.sin(t), 0, None) ** 2
    x = w * np.cos(t)
    x = np.where(x > 0, x * (1 - (1 - jaw) * (1 - 0.6 * s) * lower),
                 x * (1 + 0.3 * s) * (1 - (1 - jaw) * (1 + 0.3 * s) * lower))
    return np.column_stack([x, h * np.sin(t)])


def _hair_cap(face, yaw, back, n=48):
    """Hair over the skull: the enlarged head outline, cut below the hairline.

    The hairline is high above the forehead, at eye level at the temples and
    lowest at the nape (by azimuth of the surface point under each screen x).
    """
    w, h = face.width * 1.06, face.height * 1.06
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = w * np.cos(t)
    x = np.where(x < 0, x * back, x)
    y = h * np.sin(t) - 0.02
    reach = np.where(x < 0, w * back, w)
    azimuth = np.arcsin(np.clip(x / reach, -1, 1)) - yaw
    front = -face.height * (0.95 if face.hair_style == "receding" else face.hairline)
    rim = face.height * face.hair_length
    temple = min(rim, face.eye_height - 0.03)
    hairline = np.interp(np.abs(azimuth), [0.3, 1.2, 2.2, 3.2],
                         [front, temple, rim, rim + 0.25 * face.height])
    crown = -h * np.sqrt(np.clip(1 - (x / reach) ** 2, 0, 1)) - 0.02
    return np.column_stack([x, np.where(y > hairline, np.maximum(hairline, crown), y)])


def _draw_face(canvas, rng):
    yaw = (math.pi / 2) * rng.random() ** 1.3
    draw_face(canvas, random_face_identity(rng), yaw, random_face_expression(rng))


# -------------------------------------------------------------------- bodies

def _draw_body(canvas, rng):
    """A headless human body (neck stump, torso, limbs) in a random pose."""
    side = rng.random() < 0.4
    skin = rng.uniform(0.45, 0.85)
    shirt, pants = two_tones(rng, min_difference=0.2, amount=0.35)
    shoe = rng.uniform(0.02, 0.25)
    short_sleeves, shorts = rng.random() < 0.4, rng.random() < 0.25
    narrow = 0.55 if side else 1.0
    y_sh, y_waist, y_hip = -0.7, -0.25, rng.uniform(0.0, 0.05)
    shoulder = rng.uniform(0.2, 0.26) * narrow
    waist = rng.uniform(0.13, 0.17) * (0.8 if side else 1)
    hip = rng.uniform(0.15, 0.2) * (0.75 if side else 1)
    arm = (rng.uniform(0.28, 0.32), rng.uniform(0.25, 0.29))
    leg = (rng.uniform(0.4, 0.45), rng.uniform(0.38, 0.43))

    canvas.polygon([(-0.055, -0.86), (0.055, -0.86), (0.075, y_sh + 0.03), (-0.075, y_sh + 0.03)],
                   skin)
    if side:
        stride = rng.uniform(0, 40)
        sitting = rng.random() < 0.15
        legs = [((90, 90) if sitting else (stride, stride - rng.uniform(0, 50))),
                ((85, 95) if sitting else (-0.8 * stride, -0.8 * stride - rng.uniform(0, 30)))]
        swing = rng.uniform(-10, 50)
        arms = [(-swing, -swing + rng.uniform(0, 60)), (swing, swing + rng.uniform(0, 100))]
        far = dict(skin=skin * 0.85, shirt=contrast(shirt, 0.1), pants=contrast(pants, 0.1))
        _limb(canvas, (0, y_sh + 0.06), arms[0], arm, (0.095, 0.08),
              far["shirt"], far["skin"] if short_sleeves else far["shirt"], far["skin"], 0.045)
        _limb(canvas, (-0.02, y_hip), legs[1], leg, (0.12, 0.095),
              far["pants"], far["skin"] if shorts else far["pants"], shoe, 0.0, foot=True)
        _limb(canvas, (0.02, y_hip), legs[0], leg, (0.12, 0.095),
              pants, skin if shorts else pants, shoe, 0.0, foot=True)
        torso = [(-0.06, y_sh - 0.02), (0.06, y_sh - 0.02), (shoulder, y_sh + 0.05),
                 (shoulder + 0.03, y_sh + 0.2), (waist, y_waist), (hip, y_hip + 0.04),
                 (-hip, y_hip + 0.04), (-waist * 0.9, y_waist), (-shoulder, y_sh + 0.15),
                 (-shoulder * 0.9, y_sh + 0.03)]
        canvas.polygon(torso, shirt)
        canvas.polygon([(-waist * 0.95, y_waist + 0.1), (waist, y_waist + 0.1), (hip, y_hip + 0.04),
                        (hip * 0.8, y_hip + 0.12), (-hip * 0.9, y_hip + 0.1)], pants)
        sleeve = contrast(shirt, 0.1)
        _limb(canvas, (0, y_sh + 0.06), arms[1], arm, (0.1, 0.085),
              sleeve, skin if short_sleeves else sleeve, skin, 0.05)
        return

    spread = rng.uniform(0, 22)
    legs = [(-spread, -spread + rng.uniform(0, 15)), (spread, spread - rng.uniform(0, 15))]
    raise_ = [rng.uniform(8, 40) if rng.random() < 0.7 else rng.uniform(70, 165) for _ in range(2)]
    bends = [rng.uniform(-30, 110) for _ in range(2)]
    for sx, (a, b) in zip((-1, 1), legs):
        _limb(canvas, (sx * hip * 0.5, y_hip), (a, b), leg, (0.13, 0.1),
              pants, skin if shorts else pants, shoe, 0.0, foot=False)
    torso = [(-0.08, y_sh - 0.01), (-shoulder, y_sh + 0.03), (-shoulder - 0.01, y_sh + 0.12),
             (-shoulder + 0.03, y_sh + 0.22), (-waist, y_waist), (-hip, y_hip + 0.02),
             (hip, y_hip + 0.02), (waist, y_waist), (shoulder - 0.03, y_sh + 0.22),
             (shoulder + 0.01, y_sh + 0.12), (shoulder, y_sh + 0.03), (0.08, y_sh - 0.01)]
    canvas.polygon(torso, shirt)
    canvas.polygon([(-waist, y_waist + 0.1), (waist, y_waist + 0.1), (hip, y_hip + 0.03),
                    (hip * 0.9, y_hip + 0.14), (-hip * 0.9, y_hip + 0.14), (-hip, y_hip + 0.03)],
                   pants)
    sleeve = contrast(shirt, 0.1)
    for sx, a, b in zip((-1, 1), raise_, bends):
        _limb(canvas, (sx * (shoulder - 0.03), y_sh + 0.07), (-sx * a, -sx * (a + b)), arm,
              (0.1, 0.085), sleeve, skin if short_sleeves else sleeve, skin, 0.05)


def _limb(canvas, root, angles, lengths, widths, upper, lower, end, end_size, foot=False):
    """Two-segment limb from `root`; angles in degrees from straight down,
    positive toward +x. Ends in a hand (disc of `end_size`) or a foot."""
    a, b = np.radians(angles)
    joint = (root[0] + lengths[0] * math.sin(a), root[1] + lengths[0] * math.cos(a))
    tip = (joint[0] + lengths[1] * math.sin(b), joint[1] + lengths[1] * math.cos(b))
    canvas.stroke([joint, tip], widths[1], lower)
    canvas.stroke([root, joint], widths[0], upper)
    if end_size:
        canvas.ellipse(tip[0], tip[1], end_size, end_size * 1.2, end)
    elif foot:
        canvas.polygon([(tip[0] - 0.05, tip[1] - 0.03), (tip[0] + 0.16, tip[1] + 0.02),
                        (tip[0] + 0.16, tip[1] + 0.06), (tip[0] - 0.05, tip[1] + 0.06)], end)
    else:
        canvas.ellipse(tip[0], tip[1] + 0.03, 0.06, 0.045, end)


# -------------------------------------------------------------------- places

def _draw_place(canvas, rng):
    """A house (front or three-quarter view), a street of buildings or a room."""
    kind = rng.integers(4)
    (_house, _house_three_quarter, _street, _room)[kind](canvas, rng)


def _ground(canvas, rng, y):
    tone = pick_tone(rng)
    canvas.polygon([(-2, y), (2, y), (2, 2), (-2, 2)], tone)
    return tone


def _window_grid(canvas, rng, wall, rows, cols, tone, frame=True):
    """Windows (and their cross bars) spread over the quadrilateral `wall`."""
    glass = contrast(tone, rng.uniform(0.35, 0.6))
    du, dv = 0.5 / cols * rng.uniform(0.45, 0.7), 0.5 / rows * rng.uniform(0.4, 0.65)
    for r in range(rows):
        for c in range(cols):
            u, v = (c + 0.5) / cols, (r + 0.5) / rows
            corners = quad(wall, [u - du, u + du, u + du, u - du], [v - dv, v - dv, v + dv, v + dv])
            canvas.polygon(corners, glass)
            if frame:
                canvas.stroke(quad(wall, [u, u], [v - dv, v + dv]), 0.015, tone)
                canvas.stroke(quad(wall, [u - du, u + du], [v, v]), 0.015, tone)


def _house(canvas, rng):
    g = rng.uniform(0.35, 0.6)
    _ground(canvas, rng, g)
    width, height = rng.uniform(0.9, 1.5), rng.uniform(0.5, 0.8)
    x0, top = rng.uniform(-0.15, 0.15) - width / 2, g - height
    wall, roof = pick_tone(rng), pick_tone(rng, 0.05, 0.6)
    over = rng.uniform(0.04, 0.12)
    ridge = top - rng.uniform(0.25, 0.45)
    if rng.random() < 0.6:
        roof_shape = [(x0 - over, top), (x0 + width + over, top), (x0 + width / 2, ridge)]
    else:
        inset = width * rng.uniform(0.15, 0.35)
        roof_shape = [(x0 - over, top), (x0 + width + over, top), (x0 + width - inset, ridge),
                      (x0 + inset, ridge)]
    chimney = x0 + width * rng.uniform(0.6, 0.8)
    canvas.polygon([(chimney, top - 0.1), (chimney + 0.08, top - 0.1), (chimney + 0.08, ridge + 0.02),
                    (chimney, ridge + 0.02)], roof)
    canvas.polygon([(x0, top), (x0 + width, top), (x0 + width, g), (x0, g)], wall)
    canvas.polygon(roof_shape, roof)
    rows, cols = (1 if height < 0.6 else 2), rng.integers(2, 5)
    door = rng.integers(cols)
    facade = [(x0, top), (x0 + width, top), (x0 + width, g), (x0, g)]
    _window_grid(canvas, rng, facade, rows, cols, wall)
    dx = x0 + width * (door + 0.5) / cols
    dw = min(0.09, width / cols * 0.3)
    canvas.polygon([(dx - dw, g - min(0.32, height * 0.55)), (dx + dw, g - min(0.32, height * 0.55)),
                    (dx + dw, g), (dx - dw, g)], contrast(wall, 0.45))


def _house_three_quarter(canvas, rng):
    g = rng.uniform(0.35, 0.6)
    _ground(canvas, rng, g)
    front_w, side_w, height = rng.uniform(0.6, 0.9), rng.uniform(0.6, 1.0), rng.uniform(0.5, 0.75)
    x0 = rng.uniform(-0.8, -0.5)
    x1, x2 = x0 + front_w, x0 + front_w + side_w
    top, slope = g - height, rng.uniform(0.05, 0.15)
    wall = pick_tone(rng)
    side_tone, roof = contrast(wall, 0.15), pick_tone(rng, 0.05, 0.6)
    apex = (x0 + front_w / 2, top - rng.uniform(0.25, 0.4))
    front = [(x0, top), (x1, top), (x1, g), (x0, g)]
    side = [(x1, top), (x2, top + slope), (x2, g - slope * 0.3), (x1, g)]
    canvas.polygon(side, side_tone)
    canvas.polygon(front, wall)
    canvas.polygon([(x1 + 0.04, top + 0.01), (x2 + 0.04, top + slope + 0.01),
                    (x2 - front_w * 0.4, apex[1] + slope), apex], roof)
    canvas.polygon([(x0 - 0.04, top), (x1 + 0.04, top), apex], contrast(roof, 0.15))
    _window_grid(canvas, rng, front, 1, 2, wall)
    _window_grid(canvas, rng, side, rng.integers(1, 3), rng.integers(2, 4), side_tone)


def _street(canvas, rng):
    g = rng.uniform(0.55, 0.8)
    _ground(canvas, rng, g)
    x = -1.3
    while x < 1.3:
        width = rng.uniform(0.35, 0.7)
        height = rng.uniform(0.6, 1.6)
        tone = pick_tone(rng)
        wall = [(x, g - height), (x + width, g - height), (x + width, g), (x, g)]
        canvas.polygon(wall, tone)
        rows = max(1, int(height / rng.uniform(0.18, 0.3)))
        _window_grid(canvas, rng, wall, rows, rng.integers(2, 5), tone, frame=False)
        x += width + rng.uniform(-0.02, 0.08)


def _room(canvas, rng):
    """A room or corridor in one-point perspective, filling the frame."""
    vx, vy = rng.uniform(-0.25, 0.25), rng.uniform(-0.2, 0.15)
    bw, bh = rng.uniform(0.25, 0.7), rng.uniform(0.3, 0.6)
    back = [(vx - bw, vy - bh), (vx + bw, vy - bh), (vx + bw, vy + bh * 0.9), (vx - bw, vy + bh * 0.9)]
    far = 1.6
    frame = [(-far, -far), (far, -far), (far, far), (-far, far)]
    wall = pick_tone(rng)
    tones = [contrast(wall, 0.12), contrast(wall, 0.25), pick_tone(rng), wall]
    faces = [[frame[0], frame[1], back[1], back[0]],      # ceiling
             [frame[3], frame[0], back[0], back[3]],      # left wall
             [back[3], back[2], frame[2], frame[3]],      # floor
             [back[1], frame[1], frame[2], back[2]]]      # right wall
    for face, tone in zip(faces, tones):
        canvas.polygon(face, tone)
    canvas.polygon(back, contrast(wall, 0.06))
    floor = faces[2]
    for u in np.linspace(0.1, 0.9, rng.integers(3, 7)):
        canvas.stroke(quad(floor, [u, u], [0, 1]), 0.012, contrast(tones[2], 0.2))
    left = [frame[0], back[0], back[3], frame[3]]
    right = [back[1], frame[1], frame[2], back[2]]
    for wall_quad, tone in ((left, tones[1]), (right, tones[3])):
        for u in rng.uniform(0.15, 0.85, rng.integers(0, 3)):
            span = 0.08 + 0.1 * u
            canvas.polygon(quad(wall_quad, [u - span / 2, u + span / 2, u + span / 2, u - span / 2],
                                [0.42, 0.42, 0.98, 0.98]), contrast(tone, 0.4))
    if rng.random() < 0.7:
        canvas.polygon(quad(back, [0.25, 0.75, 0.75, 0.25], [0.15, 0.15, 0.6, 0.6]),
                       contrast(wall, 0.45))


# ---------------------------------------------------------------------- cars

def _draw_car(canvas, rng):
    """A car seen from the side or three-quarters front: body, windows, wheels."""
    kind = ("sedan", "hatchback", "van", "pickup", "suv")[rng.integers(5)]
    body = pick_tone(rng)
    glass = contrast(body, rng.uniform(0.3, 0.5))
    squeeze = rng.uniform(0.6, 0.8) if rng.random() < 0.35 else 1.0
    L, base = rng.uniform(0.8, 0.95), 0.18
    belt = base - rng.uniform(0.2, 0.26)
    roof = belt - rng.uniform(0.2, 0.26) - (0.12 if kind in ("van", "suv") else 0.0)
    front_glass, rear_glass = {
        "sedan": (0.3, -0.55), "hatchback": (0.25, -0.8), "van": (0.65, -0.92),
        "pickup": (0.3, -0.15), "suv": (0.4, -0.85),
    }[kind]
    windshield = front_glass + rng.uniform(-0.05, 0.05)
    roof_front = windshield - rng.uniform(0.15, 0.3) * (0.3 if kind == "van" else 1)
    outline = np.array([
        (-L, base), (-L - 0.02, belt + 0.04), (-L + 0.05, belt), (rear_glass * L, belt),
        (rear_glass * L + (0.02 if kind in ("van", "suv", "hatchback") else 0.2), roof),
        (roof_front * L, roof), (windshield * L, belt), (L - 0.12, belt + 0.03),
        (L, belt + 0.08), (L + 0.02, base - 0.02), (L, base),
    ])
    if kind == "pickup":
        outline[2:4, 1] = belt + 0.02
    side = outline * (squeeze, 1) - ((1 - squeeze) * L, 0)
    wheel_r = rng.uniform(0.15, 0.19)
    wheels = [(-0.62 * L, base), (0.62 * L, base)]
    tyre = rng.uniform(0.02, 0.12)
    hub = rng.uniform(0.55, 0.85)
    if squeeze < 1:
        front_x = side[-1, 0]
        depth = (1 - squeeze) * 1.3
        for wx, wy in wheels:
            canvas.ellipse(wx * squeeze + depth * 0.55, wy - 0.06, wheel_r * 0.7, wheel_r, tyre)
        nose = [(front_x, belt + 0.05), (front_x + depth, belt), (front_x + depth, base - 0.04),
                (front_x, base)]
        canvas.polygon([(front_x - 0.25, belt), (front_x, belt + 0.05), (front_x + depth, belt),
                        (front_x + depth - 0.2, belt - 0.05)], contrast(body, 0.1))
        canvas.polygon(nose, contrast(body, 0.15))
        screen = [(side[6, 0], belt), (side[5, 0], roof), (side[5, 0] + depth * 0.7, roof - 0.01),
                  (front_x + depth - 0.2, belt - 0.05)]
        canvas.polygon(screen, glass)
        for u in (0.12, 0.88):
            canvas.polygon(quad(nose, [u - 0.08, u + 0.08, u + 0.08, u - 0.08], [0.15] * 2 + [0.4] * 2),
                           contrast(body, 0.5))
        canvas.polygon(quad(nose, [0.3, 0.7, 0.7, 0.3], [0.2, 0.2, 0.55, 0.55]), contrast(body, 0.35))
    canvas.polygon(side, body)
    span = side[4, 0] + 0.03, side[5, 0] - 0.04
    divide = span[0] + (span[1] - span[0]) * rng.uniform(0.4, 0.6)
    for a, b in ((span[0], divide - 0.03), (divide + 0.03, span[1])):
        canvas.polygon([(a, belt - 0.02), (a + 0.03, roof + 0.03), (b - 0.03, roof + 0.03),
                        (b + 0.04, belt - 0.02)], glass)
    canvas.stroke([(divide, belt + 0.01), (divide + 0.02, base - 0.05)], 0.012, contrast(body, 0.3))
    for wx, wy in wheels:
        x = wx * squeeze - (1 - squeeze) * L
        canvas.ellipse(x, wy, wheel_r * 1.15 * squeeze ** 0.3, wheel_r * 1.15, contrast(body, 0.2))
        canvas.ellipse(x, wy, wheel_r * squeeze ** 0.3, wheel_r, tyre)
        canvas.ellipse(x, wy, wheel_r * 0.55 * squeeze ** 0.3, wheel_r * 0.55, hub)
        canvas.ellipse(x, wy, wheel_r * 0.15, wheel_r * 0.15, tyre)
    front = side[-2]
    canvas.ellipse(front[0] - 0.04, belt + 0.09, 0.035, 0.025, contrast(body, 0.45))


# ------------------------------------------------------------------- objects

def _draw_object(canvas, rng):
    """A musical instrument or a tool."""
    kinds = (_guitar, _violin, _trumpet, _drum, _hammer, _wrench, _screwdriver, _saw)
    kinds[rng.integers(len(kinds))](canvas, rng)


def _guitar(canvas, rng):
    wood = pick_tone(rng)
    dark = contrast(wood, 0.4)
    r1 = rng.uniform(0.27, 0.32)
    r2 = r1 * rng.uniform(0.72, 0.82)
    y1 = 0.88 - r1 * 1.05
    y2 = y1 - r1 - r2 * 0.45
    neck_top = -0.72
    canvas.polygon([(-0.045, y2), (0.045, y2), (0.04, neck_top), (-0.04, neck_top)], dark)
    canvas.polygon([(-0.04, neck_top), (0.04, neck_top), (0.065, neck_top - 0.2),
                    (-0.065, neck_top - 0.2)], dark)
    canvas.ellipse(0, y1, r1, r1 * 0.95, wood)
    canvas.ellipse(0, y2, r2, r2 * 0.95, wood)
    canvas.polygon([(-r2 * 0.9, y2), (r2 * 0.9, y2), (r1 * 0.9, y1), (-r1 * 0.9, y1)], wood)
    canvas.ellipse(0, y2 + r2 * 0.4, r2 * 0.38, r2 * 0.38, 0.05 if wood > 0.3 else 0.9)
    canvas.polygon([(-0.03, y2), (0.03, y2), (0.03, y2 + r2 * 0.05), (-0.03, y2 + r2 * 0.05)], dark)
    canvas.polygon([(-r1 * 0.4, y1 + r1 * 0.35), (r1 * 0.4, y1 + r1 * 0.35),
                    (r1 * 0.4, y1 + r1 * 0.47), (-r1 * 0.4, y1 + r1 * 0.47)], dark)


def _violin(canvas, rng):
    wood = pick_tone(rng)
    dark = contrast(wood, 0.45)
    r1, r2, waist = rng.uniform(0.22, 0.26), rng.uniform(0.17, 0.2), rng.uniform(0.1, 0.13)
    y1, y2 = 0.55, 0.55 - rng.uniform(0.42, 0.48)
    canvas.ellipse(0, y1, r1, r1 * 1.05, wood)
    canvas.ellipse(0, y2, r2, r2 * 1.05, wood)
    mid = (y1 + y2) / 2
    canvas.polygon([(-r2 * 0.8, y2), (r2 * 0.8, y2), (waist, mid), (r1 * 0.8, y1), (-r1 * 0.8, y1),
                    (-waist, mid)], wood)
    for sx in (-1, 1):
        canvas.ellipse(sx * waist * 1.05, mid, 0.045, 0.08, 0.5 * (wood + 0.5))
        canvas.stroke([(sx * 0.1, mid - 0.09), (sx * 0.085, mid), (sx * 0.1, mid + 0.09)],
                      0.018, dark)
    canvas.polygon([(-0.035, y1 - 0.05), (0.035, y1 - 0.05), (0.03, -0.7), (-0.03, -0.7)], dark)
    canvas.polygon([(-0.025, -0.68), (0.025, -0.68), (0.03, -0.82), (-0.03, -0.82)], wood)
    canvas.ellipse(0.0, -0.87, 0.055, 0.055, wood)
    canvas.ellipse(0.0, -0.87, 0.022, 0.022, dark)
    canvas.polygon([(-0.09, y1 + 0.05), (0.09, y1 + 0.05), (0.08, y1 + 0.08), (-0.08, y1 + 0.08)],
                   dark)


def _trumpet(canvas, rng):
    brass = pick_tone(rng)
    dark = contrast(brass, 0.35)
    bell_r = rng.uniform(0.17, 0.24)
    y = rng.uniform(-0.1, 0.05)
    width = rng.uniform(0.035, 0.05)
    canvas.stroke([(-0.82, y), (0.35, y)], width, brass)
    loop = [(-0.4, y), (-0.5, y + 0.09), (-0.4, y + 0.2), (0.3, y + 0.2), (0.38, y + 0.1), (0.3, y)]
    canvas.stroke(loop, width, brass)
    canvas.polygon([(-0.9, y - 0.04), (-0.82, y - 0.015), (-0.82, y + 0.015), (-0.9, y + 0.04)], dark)
    t = np.linspace(0, 1, 10)
    flare = width / 2 + (bell_r - width / 2) * t**3
    bx = 0.3 + 0.55 * t
    canvas.polygon(np.concatenate([np.column_stack([bx, y - flare]),
                                   np.column_stack([bx[::-1], y + flare[::-1]])]), brass)
    canvas.ellipse(0.85, y, 0.035, bell_r, dark)
    for vx in (-0.12, 0.0, 0.12):
        canvas.polygon([(vx - 0.035, y - 0.2), (vx + 0.035, y - 0.2), (vx + 0.035, y + 0.25),
                        (vx - 0.035, y + 0.25)], brass)
        canvas.polygon([(vx - 0.05, y - 0.26), (vx + 0.05, y - 0.26), (vx + 0.05, y - 0.2),
                        (vx - 0.05, y - 0.2)], dark)


def _drum(canvas, rng):
    shell = pick_tone(rng)
    head = contrast(shell, 0.35)
    rx, ry = rng.uniform(0.45, 0.6), rng.uniform(0.12, 0.2)
    top, bottom = rng.uniform(-0.25, -0.05), rng.uniform(0.3, 0.5)
    canvas.ellipse(0, bottom, rx, ry, shell)
    canvas.polygon([(-rx, top), (rx, top), (rx, bottom), (-rx, bottom)], shell)
    for x in np.linspace(-0.8, 0.8, 7) * rx:
        canvas.stroke([(x, top + 0.02), (x, bottom + ry * math.sqrt(1 - (x / rx) ** 2) - 0.02)],
                      0.02, contrast(shell, 0.3))
    canvas.ellipse(0, top, rx, ry, head)
    canvas.stroke(arc(0, top, rx, ry, 0, np.pi, 12), 0.03, contrast(shell, 0.3), caps=False)
    stick = contrast(shell, 0.45)
    for sx in (-1, 1):
        a = rng.uniform(0.3, 0.5)
        end = (sx * (0.15 + 0.6 * math.cos(a)), top - 0.05 - 0.6 * math.sin(a))
        canvas.stroke([(sx * 0.15, top - 0.05), end], 0.035, stick)


def _hammer(canvas, rng):
    wood, metal = two_tones(rng, amount=0.35)
    canvas.polygon([(-0.05, -0.55), (0.05, -0.55), (0.065, 0.88), (-0.065, 0.88)], wood)
    head = [(-0.38, -0.78), (0.15, -0.78), (0.15, -0.55), (-0.38, -0.55)]
    canvas.polygon(head, metal)
    canvas.polygon([(-0.42, -0.8), (-0.38, -0.8), (-0.38, -0.53), (-0.42, -0.53)], metal)
    claw = np.concatenate([arc(0.15, -0.35, 0.25, 0.43, -np.pi / 2, -0.2, 8),
                           arc(0.15, -0.4, 0.15, 0.25, -0.35, -np.pi / 2, 8)])
    canvas.polygon(claw, metal)


def _wrench(canvas, rng):
    metal = pick_tone(rng)
    canvas.polygon(_draw.rounded_box(-0.065, -0.55, 0.065, 0.6, 0.05), metal)
    canvas.ellipse(0, -0.68, 0.2, 0.2, metal)
    canvas.erase(rotate([(-0.075, -0.95), (0.075, -0.95), (0.075, -0.66), (-0.075, -0.66)],
                        rng.uniform(-0.4, 0.4), (0, -0.68)))
    canvas.ellipse(0, 0.7, 0.16, 0.16, metal)
    canvas.erase(ellipse(0, 0.7, 0.08, 0.08, 0, 12)[::2])
    canvas.stroke([(0, -0.4), (0, 0.45)], 0.02, contrast(metal, 0.2))


def _screwdriver(canvas, rng):
    grip, metal = two_tones(rng, amount=0.35)
    width = rng.uniform(0.1, 0.14)
    canvas.stroke([(0, 0.1), (0, -0.8)], rng.uniform(0.035, 0.05), metal)
    canvas.polygon([(-0.025, -0.8), (0.025, -0.8), (0.012, -0.88), (-0.012, -0.88)], metal)
    canvas.polygon(_draw.rounded_box(-width, 0.1, width, 0.88, width * 0.7), grip)
    for x in (-0.5, 0, 0.5):
        canvas.stroke([(x * width, 0.25), (x * width, 0.75)], 0.02, contrast(grip, 0.25))


def _saw(canvas, rng):
    blade, grip = two_tones(rng)
    n = rng.integers(12, 20)
    teeth_x = np.linspace(-0.45, 0.88, 2 * n + 1)
    teeth_y = 0.17 + 0.025 * (np.arange(2 * n + 1) % 2)
    canvas.polygon(np.concatenate([[(-0.45, -0.2), (0.88, 0.02)],
                                   np.column_stack([teeth_x, teeth_y])[::-1]]), blade)
    handle = [(-0.88, -0.3), (-0.42, -0.3), (-0.42, 0.25), (-0.7, 0.3), (-0.92, 0.1)]
    canvas.polygon(handle, grip)
    canvas.erase(ellipse(-0.63, -0.02, 0.12, 0.16, 0, 20))


# --------------------------------------------------------------------- words

_WORDS = (
    "house", "water", "light", "green", "table", "paper", "music", "river", "stone", "cloud",
    "night", "plant", "bread", "sugar", "horse", "apple", "chair", "money", "train", "dream",
    "the", "and", "word", "book", "open", "time", "hand", "city", "blue", "road", "window",
    "garden", "letter", "yellow", "winter", "summer", "forest", "bottle", "animal", "people",
)
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr",
           "pl", "gr", "sh", "ch", "th", "fl", "cr", "")
_VOWELS = ("a", "e", "i", "o", "u", "ea", "ou", "ai", "oo", "y")
_CODAS = ("", "", "n", "m", "r", "l", "s", "t", "nd", "st", "ck", "ng", "rt", "x")


def _word(rng) -> str:
    """A real word (a third of the time) or a pronounceable pseudo-word."""
    if rng.random() < 1 / 3:
        return _WORDS[rng.integers(len(_WORDS))]
    syllables = rng.integers(1, 4)
    return "".join(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
                   + _CODAS[rng.integers(len(_CODAS))] for _ in range(syllables))


@lru_cache(maxsize=256)
def _font(size: int):
    return ImageFont.load_default(size=size)


def _text(rng) -> str:
    """One word of 3 to 9 letters, sometimes followed by a short second word,
    in lower, upper or title case."""
    text = _word(rng)
    while not 3 <= len(text) <= 9:
        text = _word(rng)
    if len(text) < 6 and rng.random() < 0.3:
        text += " " + _word(rng)[:5]
    return (str.lower, str.upper, str.title)[rng.choice(3, p=(0.5, 0.25, 0.25))](text)


def _draw_words(canvas, rng):
    """Rendered text: random words and pseudo-words, varied case, size, weight,
    width, slant and tilt (Pillow's built-in scalable font). Letters are never
    smaller than a fifth of the image, so words stay legible at 32 pixels."""
    px, span = canvas.pixels, 2 * canvas.unit
    stretch = rng.uniform(0.75, 1.3)
    smallest = px // 5
    text = _text(rng)
    while _font(smallest).getlength(text) * stretch > 0.9 * span:
        text = _text(rng)
    width = _font(64).getlength(text) * stretch
    size = int(np.clip(64 * rng.uniform(0.45, 0.85) * span / width, smallest, px * 0.4))
    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    bold = int(size * rng.uniform(0.03, 0.07)) if rng.random() < 0.3 else 0
    pad = 2 + bold
    mask = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(mask).text((pad - left, pad - top), text, font=font, fill=255,
                              stroke_width=bold, stroke_fill=255)
    mask = mask.resize((max(1, round(mask.width * stretch)), mask.height), Image.Resampling.BILINEAR)
    if rng.random() < 0.4:
        slant = rng.uniform(0.12, 0.3)
        mask = mask.transform((mask.width + round(slant * mask.height), mask.height),
                              Image.Transform.AFFINE, (1, slant, -slant * mask.height, 0, 1, 0),
                              Image.Resampling.BILINEAR)
    mask = mask.rotate(rng.uniform(-10, 10), Image.Resampling.BILINEAR, expand=True)
    tone = rng.uniform(0.02, 0.3) if rng.random() < 0.8 else rng.uniform(0.7, 0.98)
    canvas.paste(mask, (0.0, 0.0), tone)


#: Category → (drawer, placement) of the localizer.
DRAWERS = {
    "faces": (_draw_face, Placement(scale=(1.0, 1.25), shift=0.08, angle=10)),
    "bodies": (_draw_body, Placement(scale=(0.85, 1.02), shift=0.06, angle=6)),
    "places": (_draw_place, Placement(scale=(0.95, 1.1), shift=0.05, angle=2)),
    "cars": (_draw_car, Placement(scale=(0.9, 1.05), shift=0.06, angle=5)),
    "objects": (_draw_object, Placement(scale=(0.9, 1.1), shift=0.06, angle=35)),
    "words": (_draw_words, Placement(scale=(0.9, 1.05), shift=0.1, angle=0, flip=False)),
}
