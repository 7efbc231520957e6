"""Draw the default host pack with our own code: `python -m avatar.host.make_default [OUT_DIR]`.

Every shape is an OpenCV primitive drawn at 2x and area-downsampled (smooth edges);
shading comes from blurred masks, so skin and hair look rounded without any
third-party art. The output is deterministic: re-running it rewrites identical files.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from avatar.host.pack import FORMAT, VERSION

W, H = 1280, 720
SS = 2  # supersampling: shapes are drawn at SS x the native size
CX = 461.0  # head centre x (0.36 W)
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "assets" / "hosts" / "default"

Y, X = (g.astype(np.float32) / SS for g in np.mgrid[0 : H * SS, 0 : W * SS])


def rgb(hex_color: str) -> np.ndarray:
    """A '#rrggbb' colour as a float BGR triple in 0..1."""
    return np.array([int(hex_color[i : i + 2], 16) / 255 for i in (5, 3, 1)], dtype=np.float32)


# -- geometry helpers (native pixel coordinates) ------------------------------------------------


def spline(points: list[tuple[float, float]], closed: bool = True, steps: int = 16) -> np.ndarray:
    """A smooth Catmull-Rom curve through `points`."""
    p = np.asarray(points, dtype=np.float64)
    if closed:
        p = np.vstack([p[-1], p, p[0], p[1]])
    else:
        p = np.vstack([p[0], p, p[-1]])
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3))
    if not closed:
        out.append(p[-2][None])
    return np.vstack(out)


def mirror(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The left half of a symmetric outline from its right half (reversed, so outlines stay ordered)."""
    return [(2 * CX - x, y) for x, y in reversed(points)]


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * SS * 8).astype(np.int32).reshape(-1, 1, 2)


def poly(points: np.ndarray) -> np.ndarray:
    """Anti-aliased fill of a closed outline as a float mask 0..1."""
    m = np.zeros((H * SS, W * SS), np.uint8)
    cv2.fillPoly(m, [_fixed(points)], 255, cv2.LINE_AA, shift=3)
    return m.astype(np.float32) / 255


def stroke(points: np.ndarray, width: float, closed: bool = False) -> np.ndarray:
    m = np.zeros((H * SS, W * SS), np.uint8)
    cv2.polylines(m, [_fixed(points)], closed, 255, max(1, round(width * SS)), cv2.LINE_AA, shift=3)
    return m.astype(np.float32) / 255


def ellipse(center: tuple[float, float], axes: tuple[float, float], angle: float = 0.0) -> np.ndarray:
    m = np.zeros((H * SS, W * SS), np.uint8)
    c = tuple(round(v * SS * 8) for v in center)
    a = tuple(round(v * SS * 8) for v in axes)
    cv2.ellipse(m, c, a, angle, 0, 360, 255, -1, cv2.LINE_AA, shift=3)
    return m.astype(np.float32) / 255


def rect(x0: float, y0: float, x1: float, y1: float, radius: float = 0.0) -> np.ndarray:
    """A (rounded) rectangle mask."""
    if radius <= 0:
        return poly(np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)]))
    m = poly(np.array([(x0 + radius, y0), (x1 - radius, y0), (x1 - radius, y1), (x0 + radius, y1)]))
    m = np.maximum(m, poly(np.array([(x0, y0 + radius), (x1, y0 + radius), (x1, y1 - radius), (x0, y1 - radius)])))
    for cx, cy in ((x0 + radius, y0 + radius), (x1 - radius, y0 + radius), (x0 + radius, y1 - radius), (x1 - radius, y1 - radius)):
        m = np.maximum(m, ellipse((cx, cy), (radius, radius)))
    return m


def blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with sigma in native pixels."""
    return cv2.GaussianBlur(mask, (0, 0), sigma * SS)


def shifted(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx * SS], [0, 1, dy * SS]])
    return cv2.warpAffine(mask, m, (mask.shape[1], mask.shape[0]))


def gauss(cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-(((X - cx) / sx) ** 2 + ((Y - cy) / sy) ** 2) / 2)


# -- painting --------------------------------------------------------------------------------


class Canvas:
    """A premultiplied float RGBA canvas at SS x the native size."""

    def __init__(self, fill: np.ndarray | None = None) -> None:
        self.color = np.zeros((H * SS, W * SS, 3), np.float32)
        self.alpha = np.zeros((H * SS, W * SS), np.float32)
        if fill is not None:
            self.color[:] = fill
            self.alpha[:] = 1

    def paint(self, mask: np.ndarray, color: np.ndarray, opacity: float = 1.0) -> None:
        """Paint `color` (a BGR triple or an HxWx3 field) through `mask`."""
        m = mask * opacity if opacity != 1.0 else mask
        self.color += (color - self.color) * m[..., None] if color.ndim == 3 else (color[None, None] - self.color) * m[..., None]
        self.alpha += (1 - self.alpha) * m

    def tint(self, mask: np.ndarray, color: np.ndarray, strength: float) -> None:
        """Blend existing pixels toward `color` without changing coverage (shadows, blush)."""
        m = (mask * strength * self.alpha)[..., None]
        self.color += (color * self.alpha[..., None] - self.color) * m

    def clear(self, mask: np.ndarray) -> None:
        keep = 1 - mask
        self.color *= keep[..., None]
        self.alpha *= keep

    def native(self) -> np.ndarray:
        """Downsample to the native size; straight-alpha BGRA uint8."""
        color = cv2.resize(self.color, (W, H), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(self.alpha, (W, H), interpolation=cv2.INTER_AREA)
        straight = color / np.maximum(alpha, 1e-6)[..., None]
        straight[alpha < 1 / 512] = 0
        out = np.dstack([straight, alpha])
        return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def shaded(color: np.ndarray, field: np.ndarray) -> np.ndarray:
    return color[None, None] * field[..., None]


def roundness(mask: np.ndarray, sigma: float, depth: float) -> np.ndarray:
    """Darker toward a shape's edges, as if it were rounded."""
    inside = blur(mask, sigma)
    return 1 - depth * (1 - np.clip(inside * 2 - 0.15, 0, 1)) ** 1.5


def side_light(strength: float, x0: float = CX) -> np.ndarray:
    """Light from the upper left: brighter to the left of x0."""
    return 1 + strength * np.tanh((x0 - X) / 120)


# -- the host's proportions -----------------------------------------------------------------

FACE_R = [(CX, 122), (CX + 54, 130), (CX + 85, 160), (CX + 96, 205), (CX + 95, 248), (CX + 87, 290),
          (CX + 67, 328), (CX + 36, 353)]
FACE = spline(FACE_R + [(CX, 362)] + mirror(FACE_R[1:]))
EYE_Y, EYE_DX, EYE_W, EYE_H = 241.0, 41.0, 44.0, 20.0
MOUTH = (CX, 322.0)
MOUTH_W, MOUTH_OPEN = 54.0, 18.0
CHIN = (CX, 359.0)
PIVOT = (CX, 335.0)
NECK_R = [(CX + 35, 280), (CX + 37, 350), (CX + 42, 395), (CX + 58, 425), (CX + 80, 438)]
NECK = spline(NECK_R + [(CX + 80, 470), (CX - 80, 470)] + mirror(NECK_R), steps=10)
BACK_HAIR_R = [(CX, 70), (CX + 74, 80), (CX + 116, 124), (CX + 131, 196), (CX + 128, 276), (CX + 124, 340),
               (CX + 134, 390), (CX + 112, 404), (CX + 78, 392), (CX + 50, 380)]
BACK_HAIR = spline(BACK_HAIR_R + mirror(BACK_HAIR_R[1:]))

PALETTE = {"iris": "#5c3a28", "sclera": "#f6f1ec", "lash": "#1e1a1c", "lips": "#cf6a72",
           "cavity": "#4a1a22", "teeth": "#f6f1ea", "tongue": "#bc6470"}
SKIN = rgb("#f7d9c4")
HAIR = rgb("#2e2120")
BLAZER = rgb("#2c3e66")
SHIRT = rgb("#fbf8f4")


# -- layers ---------------------------------------------------------------------------------


def background() -> np.ndarray:
    top, bottom = rgb("#f1e9e3"), rgb("#dccdc4")
    v = (Y / H)[..., None]
    c = Canvas(fill=np.zeros(3, np.float32))
    c.color[:] = top * (1 - v) + bottom * v
    c.color *= (0.96 + 0.07 * gauss(CX, 300, 420, 330))[..., None]
    # a soft curtain on the left
    folds = 0.5 + 0.5 * np.sin(X / 19.0 + 0.6 * np.sin(X / 47.0))
    c.paint(rect(-10, -10, 150, H + 10) * (1 - np.clip((X - 120) / 30, 0, 1)), shaded(rgb("#e9ddd2"), 0.93 + 0.06 * folds))
    # a low credenza line behind the host
    c.paint(rect(-10, 560, 860, 574), rgb("#cdb8a8"))
    c.paint(rect(-10, 574, 860, H + 10), shaded(rgb("#d6c3b4"), 0.97 - 0.05 * (Y - 574) / 150))
    # a tall plant between the host and the shelf
    c.paint(rect(760, 470, 828, 574, 10), shaded(rgb("#e8e1d8"), side_light(0.05, 794)))
    leaf = rgb("#6f9a6b")
    for (x, y, a, ang) in ((790, 400, 46, -70), (760, 360, 52, -115), (820, 350, 50, -60), (775, 300, 44, -100),
                           (812, 292, 40, -75), (742, 420, 40, -150), (840, 410, 40, -30), (795, 250, 34, -88)):
        c.paint(ellipse((x, y), (a, a * 0.36), ang), shaded(leaf, 0.85 + 0.25 * gauss(x - 8, y - 8, 30, 20)))
    c.paint(stroke(np.array([(794, 470), (792, 400), (784, 320)]), 3), rgb("#5c7f57"))
    # shelving on the right: a light-wood unit with a few products
    wood, dark_wood = rgb("#d9bf9f"), rgb("#b99a78")
    c.paint(rect(890, 96, 1236, 640), shaded(rgb("#efe2d3"), 0.96 + 0.05 * gauss(1060, 300, 200, 220)))
    for x0 in (890, 1224):
        c.paint(rect(x0, 90, x0 + 14, 650), wood)
    for y in (96, 250, 400, 550, 636):
        c.paint(rect(886, y, 1240, y + 12), shaded(wood, 1.0 - 0.12 * (Y > y + 8)))
        c.paint(rect(890, y + 12, 1236, y + 22), dark_wood, 0.18)
    items = [  # (x0, width, height, colour, radius) standing on shelf y
        (250, [(930, 58, 82, "#f3c6c6", 4), (1000, 34, 112, "#fdfbf7", 10), (1046, 50, 60, "#b9d8cd", 6),
               (1150, 44, 96, "#e9b98f", 8)]),
        (400, [(920, 90, 58, "#f7e6c4", 4), (1030, 28, 94, "#c98f6a", 8), (1068, 28, 80, "#fdfbf7", 8),
               (1140, 64, 110, "#d7c5e8", 5)]),
        (550, [(940, 70, 42, "#fbe3d9", 4), (946, 58, 38, "#e7a9a9", 4), (1060, 84, 70, "#cfe0ea", 6)]),
    ]
    for shelf_y, things in items:
        for i, (x0, w, h, col, r) in enumerate(things):
            base = shelf_y - (38 if (shelf_y, i) == (550, 1) else 0)
            c.paint(rect(x0, base - h, x0 + w, base, r), shaded(rgb(col), side_light(0.08, x0 + w / 2)))
            if h > 80 and w < 40:  # a bottle: a cap and a label
                c.paint(rect(x0 + w * 0.25, base - h - 14, x0 + w * 0.75, base - h + 2, 3), rgb("#3b3a3f"))
                c.paint(rect(x0 + 3, base - h * 0.6, x0 + w - 3, base - h * 0.3), rgb("#ffffff"), 0.6)
    c.paint(ellipse((1178, 548), (30, 10)), rgb("#ccb49a"))
    for (x, y, a, ang) in ((1160, 505, 30, -120), (1196, 500, 30, -60), (1178, 490, 28, -90)):
        c.paint(ellipse((x, y), (a, a * 0.4), ang), leaf)
    c.paint(rect(1160, 520, 1196, 550, 6), rgb("#efe6dc"))
    # two warm pendant lamps with halos
    for x, drop in ((980, 40), (1150, 22)):
        c.paint(stroke(np.array([(x, -5), (x, drop)]), 2), rgb("#6e625a"))
        c.paint(ellipse((x, drop + 16), (30, 18)) * (Y < drop + 18), rgb("#e4b56b"))
        c.color += (0.22 * gauss(x, drop + 30, 70, 55))[..., None] * rgb("#ffe6bf")[None, None]
    c.color[:] = cv2.GaussianBlur(c.color, (0, 0), 1.8 * SS)  # depth of field: the studio sits behind the host
    c.color += (0.03 * gauss(CX, 250, 300, 260))[..., None]
    return c.native()[..., :3]


def body() -> np.ndarray:
    c = Canvas()
    back_hair = poly(BACK_HAIR) * (Y > 300)
    c.paint(back_hair, shaded(HAIR, 0.72 * roundness(poly(BACK_HAIR), 10, 0.3)))
    # neck, in the shadow of the chin
    neck = poly(NECK)
    chin_shadow = blur(shifted(poly(FACE), 0, 12), 9) * (Y > 300)
    c.paint(neck, shaded(SKIN, (0.93 - 0.2 * chin_shadow) * roundness(neck, 9, 0.22) * side_light(0.05)))
    # blazer
    shoulder_r = [(CX + 58, 426), (CX + 124, 437), (CX + 184, 452), (CX + 222, 484), (CX + 236, 545), (CX + 240, 640), (CX + 242, 760), (CX + 242, 820)]
    torso = poly(spline(shoulder_r + mirror(shoulder_r), steps=12))
    blazer_light = roundness(torso, 30, 0.35) * side_light(0.1) * (1.05 - 0.15 * gauss(CX, 700, 400, 120))
    c.paint(torso, shaded(BLAZER, blazer_light))
    for side in (-1, 1):  # sleeve seams: arms hang beside the torso
        seam = spline([(CX + side * 190, 458), (CX + side * 180, 530), (CX + side * 178, 620), (CX + side * 180, 730)], closed=False)
        c.tint(blur(stroke(seam, 2), 1.2), rgb("#141d33"), 0.6)
        c.tint(blur(stroke(seam + [side * 5, 0], 3), 3), rgb("#4a5f8c"), 0.35)
    # shirt in the blazer's V, with the skin of the open collar
    shirt_v = poly(np.array([(CX - 66, 430), (CX + 66, 430), (CX + 10, 640), (CX - 10, 640)]))
    c.paint(shirt_v, shaded(SHIRT, 0.96 + 0.04 * side_light(1.0) - 0.1 * blur(stroke(np.array([(CX, 470), (CX, 640)]), 3), 4)))
    chest = poly(spline([(CX - 40, 426), (CX - 22, 460), (CX, 506), (CX + 22, 460), (CX + 40, 426), (CX, 410)], steps=10))
    c.paint(chest, shaded(SKIN, 0.95 * roundness(chest, 8, 0.15) - 0.12 * chin_shadow))
    # necklace: a fine gold chain with a small pendant
    chain = spline([(CX - 38, 430), (CX - 20, 456), (CX, 466), (CX + 20, 456), (CX + 38, 430)], closed=False)
    c.paint(stroke(chain, 1.3), rgb("#d6b36a"))
    c.paint(ellipse((CX, 472), (4.2, 5.2)), shaded(rgb("#e8c47a"), 0.9 + 0.2 * gauss(CX - 1.5, 470, 2, 2)))
    # shirt collar flaps over the lapels
    for side in (-1, 1):
        flap = [(CX + side * 40, 424), (CX + side * 60, 428), (CX + side * 78, 466), (CX + side * 32, 460)]
        c.paint(poly(spline(flap, steps=6)), SHIRT * (0.97 - 0.06 * (side > 0)))
        c.tint(blur(stroke(np.array([flap[2], flap[3], (CX + side * 22, 448)]), 1.4), 1), rgb("#b9b1ab"), 0.6)
    # lapels: lighter facing with a notch, edged by a soft shadow
    for side in (-1, 1):
        lapel = spline([(CX + side * 64, 432), (CX + side * 96, 470), (CX + side * 104, 458), (CX + side * 118, 486),
                        (CX + side * 40, 620), (CX + side * 12, 640), (CX + side * 54, 520)], steps=6)
        m = poly(lapel)
        c.paint(m, shaded(BLAZER, 1.12 * side_light(0.12) * roundness(m, 6, 0.2)))
        c.tint(blur(stroke(lapel, 1.6, closed=True), 1.5) * (1 - m), rgb("#121a2e"), 0.55)
    # blazer closure and button
    c.tint(blur(stroke(np.array([(CX, 640), (CX + 2, 730)]), 2), 1), rgb("#121a2e"), 0.7)
    c.paint(ellipse((CX + 8, 672), (7, 7)), shaded(rgb("#1a2440"), 0.9 + 0.3 * gauss(CX + 6, 670, 3, 3)))
    # a small clip-on microphone on the left lapel
    c.paint(rect(CX - 84, 540, CX - 74, 560, 4), shaded(rgb("#202024"), 1 + 0.6 * gauss(CX - 81, 545, 2, 4)))
    c.paint(rect(CX - 86, 558, CX - 72, 564, 2), rgb("#3a3a40"))
    return c.native()


def _hair_light(mask: np.ndarray) -> np.ndarray:
    """Hair shading: rounded, with a glossy band across the crown."""
    sheen = gauss(CX - 20, 112, 80, 22) * (0.6 + 0.4 * np.cos((X - CX) / 60))
    return roundness(mask, 14, 0.45) * side_light(0.12) * (1 + 0.9 * sheen)


def _strands(c: Canvas, mask: np.ndarray, curves: list[np.ndarray]) -> None:
    """Fine strands along the hair's flow, alternately a little lighter and darker than the hair."""
    light, dark = np.zeros_like(mask), np.zeros_like(mask)
    for i, curve in enumerate(curves):
        target = light if i % 3 == 0 else dark
        np.maximum(target, stroke(spline(curve, closed=False, steps=12), 0.9), out=target)
    c.tint(blur(light, 0.6) * mask, rgb("#7a5a4c"), 0.3)
    c.tint(blur(dark, 0.6) * mask, rgb("#120c0c"), 0.35)


def _side_strands(rng: np.random.Generator) -> list[np.ndarray]:
    curves = []
    for i in range(28):
        side = -1 if i % 2 else 1
        top = (CX + side * rng.uniform(60, 110), rng.uniform(96, 130))
        mid = (CX + side * rng.uniform(112, 128), rng.uniform(220, 280))
        end = (CX + side * rng.uniform(96, 132), rng.uniform(372, 396))
        curves.append([top, mid, end])
    return curves


def _fringe_strands(rng: np.random.Generator, edge: list[tuple[float, float]]) -> list[np.ndarray]:
    """From the parting (right of centre) sweeping down to points along the fringe's edge and the temples."""
    curves = []
    for i in range(30):
        ex, ey = edge[int(rng.integers(0, len(edge)))]
        start = (CX + 26 + rng.uniform(-8, 8), 76 + rng.uniform(0, 6))
        mid = ((start[0] + ex) / 2 + rng.uniform(-6, 6), min(start[1], ey) + 0.35 * abs(ey - start[1]) - 12)
        curves.append([start, mid, (ex + rng.uniform(-3, 3), ey - rng.uniform(2, 8))])
    return curves


def head() -> np.ndarray:
    c = Canvas()
    face = poly(FACE)
    neck_cut = np.clip(blur(poly(NECK), 1.2) * 1.1, 0, 1) * (Y > 330)
    back = poly(BACK_HAIR)
    c.paint(back, shaded(HAIR, 0.72 * roundness(back, 10, 0.3)))
    rng = np.random.default_rng(7)
    _strands(c, back, _side_strands(rng))
    c.tint(blur(face, 10), rgb("#0e0a0a"), 0.5)  # the face casts a soft shadow onto the hair behind it
    c.clear(neck_cut * (1 - face))
    # ears
    for side in (-1, 1):
        ear = ellipse((CX + side * 95, 263), (12, 27), side * -8)
        c.paint(ear, shaded(SKIN, 0.88 * roundness(ear, 4, 0.2)))
        c.tint(blur(ellipse((CX + side * 97, 264), (5, 16), side * -8), 2), rgb("#c98c7c"), 0.5)
    # face: rounded, lit from the upper left, with blush and a shaded jaw
    light = roundness(face, 22, 0.16) * side_light(0.06) * (1 - 0.07 * np.clip((Y - 300) / 60, 0, 1))
    c.paint(face, shaded(SKIN, light))
    for side in (-1, 1):
        c.tint(gauss(CX + side * 54, 292, 17, 11) * face, rgb("#f2a0a0"), 0.3)
        c.tint(blur(ellipse((CX + side * EYE_DX, EYE_Y - 5), (23, 11)), 5), rgb("#c9907f"), 0.25)  # lids
        c.tint(blur(ellipse((CX + side * (EYE_DX + 6), EYE_Y + 12), (16, 4)), 3), rgb("#d8a896"), 0.18)
    c.tint(blur(stroke(FACE[FACE[:, 1] > 300], 3), 6) * face, rgb("#c98f7a"), 0.3)
    c.tint(gauss(CX, 368, 40, 10) * face, rgb("#d89c88"), 0.3)
    c.tint(gauss(CX, 150, 70, 30) * face, rgb("#ffffff"), 0.08)
    # nose: a shadowed right flank, a lit bridge, soft nostrils
    c.tint(blur(stroke(spline([(CX + 8, 246), (CX + 10, 268), (CX + 13, 286)], closed=False), 3), 3.5), rgb("#d19a85"), 0.55)
    c.tint(blur(stroke(np.array([(CX - 4, 250), (CX - 3, 284)]), 3), 3), rgb("#fff4ea"), 0.35)
    c.tint(gauss(CX + 1, 297, 11, 4), rgb("#dfa08c"), 0.2)
    for side in (-1, 1):
        c.tint(blur(ellipse((CX + side * 6.5, 298), (3.4, 1.7), side * 15), 0.8), rgb("#8f5a50"), 0.3)
        c.tint(blur(stroke(spline([(CX + side * 14, 291), (CX + side * 17, 297), (CX + side * 11, 300)], closed=False), 1.2), 0.8),
               rgb("#c58674"), 0.3)
    # eyebrows: tapered arcs, soft-edged
    for side in (-1, 1):
        upper = spline([(CX + side * 20, 205), (CX + side * 46, 199), (CX + side * 64, 200), (CX + side * 77, 207.5)], closed=False, steps=10)
        lower = spline([(CX + side * 77, 207.5), (CX + side * 62, 204), (CX + side * 44, 203.5), (CX + side * 21, 208.5)], closed=False, steps=10)
        c.tint(blur(poly(np.vstack([upper, lower])), 0.9), rgb("#553830"), 0.8)
    # front hair: crown, temples and a side-swept fringe
    front_r = [(CX - 104, 252), (CX - 116, 196), (CX - 110, 136), (CX - 78, 90), (CX - 24, 72), (CX + 36, 74),
               (CX + 88, 96), (CX + 116, 142), (CX + 118, 200), (CX + 104, 250), (CX + 94, 214), (CX + 88, 178),
               (CX + 72, 160), (CX + 44, 152), (CX + 14, 160), (CX - 16, 172), (CX - 44, 184), (CX - 72, 192),
               (CX - 92, 200), (CX - 96, 228)]
    front = poly(spline(front_r, steps=10))
    c.tint(blur(shifted(front, 2, 7), 5) * face * (1 - front), rgb("#b07a66"), 0.5)  # fringe shadow on the forehead
    c.paint(front, shaded(HAIR, _hair_light(front)))
    _strands(c, front, _fringe_strands(rng, front_r[:2] + front_r[8:]))
    return c.native()


# -- the pack -------------------------------------------------------------------------------


def manifest() -> dict:
    x0, x1 = float(FACE[:, 0].min()), float(FACE[:, 0].max())
    y0, y1 = float(FACE[:, 1].min()), float(FACE[:, 1].max())
    eye = lambda side: {"center": [CX + side * EYE_DX, EYE_Y], "width": EYE_W, "height": EYE_H}
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": "default",
        "description": "LinkUp's default host, drawn with OpenCV primitives by avatar/host/make_default.py",
        "size": [W, H],
        "layers": {"background": "background.png", "body": "body.png", "head": "head.png"},
        "rig": {
            "face_box": [round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1)],
            "head_pivot": list(PIVOT),
            "eye_left": eye(-1),
            "eye_right": eye(1),
            "mouth": {"center": list(MOUTH), "width": MOUTH_W, "max_open": MOUTH_OPEN},
            "jaw": list(CHIN),
            "hands": {},
        },
        "palette": PALETTE,
    }


def write_pack(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    png = [cv2.IMWRITE_PNG_COMPRESSION, 9]
    cv2.imwrite(str(out / "background.png"), background(), png)
    cv2.imwrite(str(out / "body.png"), body(), png)
    cv2.imwrite(str(out / "head.png"), head(), png)
    (out / "manifest.json").write_text(json.dumps(manifest(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else DEFAULT_OUT
    write_pack(out)
    print(f"wrote the default host pack to {out}")


if __name__ == "__main__":
    main()
