"""The host on screen: a pack's layers animated by Motion, with eyes and mouth drawn per frame.

Everything that never changes is prepared once (scaled layers, premultiplied
alpha, background+body composites per breath level), so a frame costs a copy of
the prepared picture, one warp of the head's region, and a few small primitives.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from avatar.host.motion import MAX_ANGLE, MAX_SHIFT, Motion
from avatar.host.pack import Eye, HostPack, Palette, Rig

BREATH_LEVELS = 12  # prepared background+body pictures across one breath
BREATH_RISE = 1.6  # native px the shoulders rise at the top of a breath
NOD_DY, NOD_SQUASH = 2.0, 0.015  # a nod lowers the head and foreshortens it slightly
GAZE_DX, GAZE_ANGLE = 6.0, -1.5  # turning toward the card (gaze 1) moves and tilts the head
UPPER_LIP_SHARE = 0.3  # of the mouth opening taken by the upper lip; the jaw takes the rest
SENTENCE_NOD = 1.5  # a sentence-end nod (1.0) in units of the sway's nod: about 3 px down at 720p
SPREAD, ROUND = 0.12, 0.22  # share of the mouth's width gained when spread (wide 1), lost when rounded (wide -1)


def width_factor(wide: float) -> float:
    """How much wider (spread) or narrower (rounded) the mouth is than at rest, for wide -1..1."""
    wide = min(max(float(wide), -1.0), 1.0)
    return 1 + (SPREAD if wide > 0 else ROUND) * wide
SUB = 16  # cv2 drawing: 4 fractional bits, so features glide with the head instead of snapping to pixels


def _premultiply(bgra: np.ndarray) -> np.ndarray:
    f = bgra.astype(np.float32)
    f[..., :3] *= f[..., 3:] / 255
    return f


def _scaled(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    up = width > image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC if up else cv2.INTER_AREA)


def _to_u8_premultiplied(f: np.ndarray) -> np.ndarray:
    alpha = np.clip(f[..., 3:], 0, 255)
    color = np.clip(f[..., :3], 0, alpha)
    return np.round(np.concatenate([color, alpha], axis=2)).astype(np.uint8)


def _over(dst: np.ndarray, premul: np.ndarray) -> np.ndarray:
    """Premultiplied BGRA `premul` over BGR `dst` (same size), as uint8."""
    inv = cv2.cvtColor(cv2.bitwise_not(premul[..., 3].copy()), cv2.COLOR_GRAY2BGR)
    return cv2.add(cv2.multiply(dst, inv, scale=1 / 255), cv2.cvtColor(premul, cv2.COLOR_BGRA2BGR))


def _affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _patch_box(pts: np.ndarray, pad: float, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    x0, y0 = np.floor(pts.min(axis=0) - pad).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0) + pad).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _blend_masked(patch: np.ndarray, layer: np.ndarray, mask: np.ndarray) -> None:
    """patch = layer where mask (uint8, 0..255), patch elsewhere; in place."""
    m = mask.astype(np.uint16)[..., None]
    patch[:] = ((layer.astype(np.uint16) * m + patch.astype(np.uint16) * (255 - m) + 127) // 255).astype(np.uint8)


def _shade(color: tuple[int, int, int], factor: float, lift: int = 0) -> tuple[int, int, int]:
    return tuple(min(255, int(c * factor + lift)) for c in color)  # type: ignore[return-value]


def head_matrix(pivot: tuple[float, float], scale: float, dx: float, dy: float, angle: float, nod: float) -> np.ndarray:
    """3x3 map from native head coordinates to output pixels for a pose: tilt `angle` degrees and nod about
    `pivot`, then shift by (dx, dy) native px."""
    px, py = pivot
    a = math.radians(angle)
    c, sn = math.cos(a), math.sin(a)
    squash = 1 - NOD_SQUASH * nod
    # rotate (counter-clockwise on screen, y down) and squash about the pivot, then shift
    r = np.array([[c, sn, 0], [-sn * squash, c * squash, 0], [0, 0, 1]])
    to_pivot = np.array([[1, 0, -px], [0, 1, -py], [0, 0, 1]])
    back = np.array([[1, 0, px + dx], [0, 1, py + dy + NOD_DY * nod], [0, 0, 1]])
    return np.diag([scale, scale, 1.0]) @ back @ r @ to_pivot


class _Eye:
    """One eye, drawn per frame: sclera and iris inside the lids' almond, lashes, lower lash line, crease.

    Shapes are sampled once in native pixels around the eye's centre; a frame moves
    them with the head in one matrix product and draws with sub-pixel precision.
    """

    N = 15

    def __init__(self, eye: Eye, outer: float, palette: Palette, scale: float) -> None:
        t = np.linspace(-1.0, 1.0, self.N)
        h = eye.height
        base = h * (0.05 - 0.075 * (t + 1))  # inner corner a little low, outer corner lifted
        self.x = eye.center[0] + outer * t * eye.width / 2
        self.cy = eye.center[1]
        self.upper_open = base - 0.56 * h * (1 - t * t) ** 0.7 * (1 - 0.1 * t)
        self.lower = base + 0.42 * h * (1 - t * t) ** 0.9
        self.lash = 0.9 + 1.6 * (t + 1) / 2  # thicker toward the outer corner
        self.crease = self.upper_open[2:-2] - 0.42 * h
        self.fixed = np.array([[eye.center[0] + outer * 1.16 * eye.width / 2, self.cy + base[-1] - 0.32 * h],
                               [eye.center[0], self.cy + 0.02 * h]])  # lash flick, iris centre at gaze 0
        self.gaze_dx = 0.24 * eye.width
        self.r = 0.56 * h * scale
        self.pad = 3 * scale
        self.palette = palette
        self.lid_shadow = (_shade(palette.sclera, 0.72), max(1, round(2.5 * scale)))
        self.iris_colors = (_shade(palette.iris, 0.55), palette.iris, _shade(palette.iris, 1.35, 12))
        self.crease_width = max(1, round(1.2 * scale))
        self.lower_width = max(1, round(0.9 * scale))

    def draw(self, out: np.ndarray, head: np.ndarray, blink: float, gaze: float) -> None:
        n = self.N
        upper = self.upper_open + blink * (self.lower - self.upper_open)
        ys = np.concatenate([upper, self.lower, upper - self.lash, self.crease]) + self.cy
        xs = np.concatenate([self.x, self.x, self.x, self.x[2:-2]])
        local = np.vstack([np.column_stack([xs, ys]), self.fixed + ((0.0, 0.0), (gaze * self.gaze_dx, 0.0))])
        p = _affine(head, local)
        box = _patch_box(p[:-1], self.pad, out.shape)
        if box is None:
            return
        x0, y0, x1, y1 = box
        patch = out[y0:y1, x0:x1]
        f = np.round((p - (x0, y0)) * SUB).astype(np.int32)
        f_upper, f_lower, f_lash_top, f_crease = f[:n], f[n : 2 * n], f[2 * n : 3 * n], f[3 * n : -2]
        flick, iris_c = f[-2], f[-1]
        pal = self.palette
        if blink < 0.98:
            layer = np.empty_like(patch)
            layer[:] = pal.sclera
            cv2.polylines(layer, [f_upper], False, *self.lid_shadow, cv2.LINE_AA, shift=4)
            ic, r = (int(iris_c[0]), int(iris_c[1])), self.r * SUB
            dark, mid, light = self.iris_colors
            cv2.circle(layer, ic, int(r), dark, -1, cv2.LINE_AA, shift=4)
            cv2.circle(layer, ic, int(r * 0.84), mid, -1, cv2.LINE_AA, shift=4)
            cv2.circle(layer, (ic[0], ic[1] + int(r * 0.3)), int(r * 0.5), light, -1, cv2.LINE_AA, shift=4)
            cv2.circle(layer, ic, int(r * 0.42), (18, 14, 14), -1, cv2.LINE_AA, shift=4)
            cv2.circle(layer, (ic[0] - int(r * 0.38), ic[1] - int(r * 0.36)), int(max(r * 0.24, SUB)), (250, 252, 255), -1,
                       cv2.LINE_AA, shift=4)
            mask = np.zeros(patch.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.vstack([f_upper, f_lower[::-1]])], 255, cv2.LINE_AA, shift=4)
            _blend_masked(patch, layer, mask)
            crease = np.zeros(patch.shape[:2], np.uint8)
            cv2.polylines(crease, [f_crease], False, int(70 * (1 - blink)), self.crease_width, cv2.LINE_AA, shift=4)
            _blend_masked(patch, (patch.astype(np.uint16) * 3 // 4).astype(np.uint8), crease)
        lower_line = patch.copy()
        cv2.polylines(lower_line, [f_lower[4:]], False, pal.lash, self.lower_width, cv2.LINE_AA, shift=4)
        patch[:] = cv2.addWeighted(patch, 0.6, lower_line, 0.4, 0)
        cv2.fillPoly(patch, [np.vstack([f_upper, flick[None], f_lash_top[::-1]])], pal.lash, cv2.LINE_AA, shift=4)


class _Mouth:
    """Lips around a dark cavity (upper teeth, a tongue) opening by a given number of native px; a lip line when shut."""

    N = 21

    def __init__(self, rig: Rig, palette: Palette, scale: float) -> None:
        t = np.linspace(-1.0, 1.0, self.N)
        mw = rig.mouth_width
        self.mw, self.max_open = mw, rig.mouth_max_open
        self.x = rig.mouth_center[0] + t * mw / 2
        self.cx, self.cy = rig.mouth_center
        self.line = -0.05 * mw * t * t  # corners turned up: a friendly resting smile
        self.lens = (1 - t * t) ** 0.65
        self.upper_t = 0.12 * mw * (1 - t * t) ** 0.55 * (1 - 0.25 * np.exp(-((t / 0.13) ** 2)))  # cupid's bow
        self.lower_t = 0.16 * mw * (1 - t * t) ** 0.7
        self.tooth_shape = 1 - np.clip(np.abs(t) / 0.75, 0, 1) ** 4
        self.scale = scale
        self.palette = palette
        self.upper_color = _shade(palette.lips, 0.86)
        self.seam = (_shade(palette.lips, 0.45), max(1, round(scale)))
        self.shine_axes = (int(0.15 * mw * scale * SUB), int(0.035 * mw * scale * SUB))

    def draw(self, out: np.ndarray, head: np.ndarray, opening: float, wide: float = 0.0) -> None:
        n, mw, pal = self.N, self.mw * width_factor(wide), self.palette
        x = self.cx + (self.x - self.cx) * width_factor(wide)
        open_px = opening * self.scale > 0.4
        upper_in = self.line - UPPER_LIP_SHARE * opening * self.lens
        upper_out = self.line - 0.6 * UPPER_LIP_SHARE * opening * self.lens - self.upper_t
        lower_in = self.line + (1 - UPPER_LIP_SHARE) * opening * self.lens
        lower_out = lower_in + self.lower_t * (1 - 0.15 * opening / self.max_open)
        teeth = upper_in + min(0.4 * opening, 0.09 * mw) * self.tooth_shape
        mid = n // 2
        ys = np.concatenate([upper_in, upper_out, lower_in, lower_out, teeth, self.line]) + self.cy
        centers = np.array([[self.cx, self.cy + lower_in[mid] - 0.1 * opening],  # tongue
                            [self.cx - 0.06 * mw, self.cy + lower_in[mid] + 0.45 * self.lower_t[mid]]])  # lip shine
        p = _affine(head, np.vstack([np.column_stack([np.tile(x, 6), ys]), centers]))
        box = _patch_box(p[: 4 * n], 3 * self.scale, out.shape)
        if box is None:
            return
        x0, y0, x1, y1 = box
        patch = out[y0:y1, x0:x1]
        f = np.round((p - (x0, y0)) * SUB).astype(np.int32)
        f_ui, f_uo, f_li, f_lo, f_teeth, f_line = (f[i * n : (i + 1) * n] for i in range(6))
        tongue, shine_c = f[-2], f[-1]
        if open_px:
            layer = np.empty_like(patch)
            layer[:] = pal.cavity
            cv2.fillPoly(layer, [np.vstack([f_ui, f_teeth[::-1]])], pal.teeth, cv2.LINE_AA, shift=4)
            axes = (int(0.3 * mw * self.scale * SUB), int(max(0.3 * opening, 0.5) * self.scale * SUB))
            cv2.ellipse(layer, (int(tongue[0]), int(tongue[1])), axes, 0, 180, 360, pal.tongue, -1, cv2.LINE_AA, shift=4)
            mask = np.zeros(patch.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.vstack([f_ui, f_li[::-1]])], 255, cv2.LINE_AA, shift=4)
            _blend_masked(patch, layer, mask)
        cv2.fillPoly(patch, [np.vstack([f_uo, f_ui[::-1]])], self.upper_color, cv2.LINE_AA, shift=4)
        cv2.fillPoly(patch, [np.vstack([f_li, f_lo[::-1]])], pal.lips, cv2.LINE_AA, shift=4)
        shine = patch.copy()
        cv2.ellipse(shine, (int(shine_c[0]), int(shine_c[1])), self.shine_axes, 0, 0, 360, (235, 235, 255), -1, cv2.LINE_AA, shift=4)
        patch[:] = cv2.addWeighted(patch, 0.9, shine, 0.1, 0)
        if not open_px:
            cv2.polylines(patch, [f_line], False, *self.seam, cv2.LINE_AA, shift=4)


class HostRenderer:
    """Renders frame n of the host: background, breathing body, moving head, blinking eyes, talking mouth."""

    def __init__(self, pack: HostPack, width: int, height: int, seed: int = 0) -> None:
        nw, nh = pack.size
        self.scale = width / nw
        if abs(height / nh - self.scale) > 0.01:
            raise ValueError(f"{width}x{height} does not have the pack's aspect ({nw}x{nh})")
        self.width, self.height = width, height
        self.rig: Rig = pack.rig
        self.palette: Palette = pack.palette
        self.motion = Motion(seed)
        s = self.scale
        background = _scaled(pack.background, width, height)
        body = _premultiply(_scaled(pack.body, width, height))
        self._prepare_breath(background, body)
        head = _to_u8_premultiplied(_premultiply(_scaled(pack.head, width, height)))
        ys, xs = np.nonzero(head[..., 3])
        if ys.size == 0:
            raise ValueError(f"{pack.path}: the head layer is fully transparent")
        x0, y0, x1, y1 = xs.min() - 1, ys.min() - 1, xs.max() + 2, ys.max() + 2
        x0, y0 = max(x0, 0), max(y0, 0)
        self._sprite = np.ascontiguousarray(head[y0:y1, x0:x1])
        self._sprite_origin = (float(x0), float(y0))
        px, py = self.rig.head_pivot
        corners = np.array([(x0, y0), (x1, y0), (x0, y1), (x1, y1)], dtype=np.float64)
        reach = float(np.max(np.hypot(corners[:, 0] - px * s, corners[:, 1] - py * s)))
        margin = (MAX_SHIFT + GAZE_DX + NOD_DY * (1 + SENTENCE_NOD)) * s + reach * math.sin(math.radians(MAX_ANGLE)) + 2
        drop = (1 - UPPER_LIP_SHARE) * self.rig.mouth_max_open * s
        self._roi = (max(int(x0 - margin), 0), max(int(y0 - margin), 0),
                     min(int(x1 + margin) + 1, width), min(int(y1 + margin + drop) + 1, height))
        self._prepare_jaw()
        self._eyes = (_Eye(self.rig.eye_left, -1.0, self.palette, s), _Eye(self.rig.eye_right, 1.0, self.palette, s))
        self._mouth = _Mouth(self.rig, self.palette, s)

    # -- preparation ------------------------------------------------------------------------

    def _prepare_breath(self, background: np.ndarray, body: np.ndarray) -> None:
        """Background+body pictures for BREATH_LEVELS breath values; the rows above the body stay static."""
        rows = np.nonzero(body[..., 3].max(axis=1) > 0)[0]
        rise = BREATH_RISE * self.scale
        self._top = max(int(rows[0] - 2 * rise - 2), 0) if rows.size else self.height
        h, w = self.height, self.width
        span = max(h - rows[0], 1.0) if rows.size else 1.0
        px = self.rig.head_pivot[0] * self.scale
        self._static = background[: self._top].copy()
        self._breaths = []
        for b in np.linspace(-1.0, 1.0, BREATH_LEVELS):
            k = b * rise / span  # stretch about the bottom edge: shoulders rise, the frame edge stays put
            m = np.float32([[1 + 0.3 * k, 0, -0.3 * k * px], [0, 1 + k, -k * h]])
            moved = cv2.warpAffine(body, m, (w, h), flags=cv2.INTER_LINEAR)
            a = moved[self._top :, :, 3:] / 255
            picture = background[self._top :].astype(np.float32) * (1 - a) + moved[self._top :, :, :3]
            self._breaths.append(np.clip(np.round(picture), 0, 255).astype(np.uint8))

    def _prepare_jaw(self) -> None:
        """A displacement weight around the mouth: 1 on the chin, fading to 0 above the lips and off the jaw."""
        rig, s = self.rig, self.scale
        mw, fw = rig.mouth_width, (rig.face_box[2] - rig.face_box[0]) / 2
        chin = rig.jaw[1] - rig.mouth_center[1]
        drop = (1 - UPPER_LIP_SHARE) * rig.mouth_max_open
        left, right, top, bottom = -1.15 * fw, 1.15 * fw, -0.05 * mw - 0.5 * (1.15 * fw - 0.45 * mw), chin + 2.5 * drop + 2
        self._jaw_box = (int(math.floor(left * s)), int(math.floor(top * s)), int(math.ceil(right * s)), int(math.ceil(bottom * s)))
        gx = np.arange(self._jaw_box[0], self._jaw_box[2], dtype=np.float32) / s
        gy = np.arange(self._jaw_box[1], self._jaw_box[3], dtype=np.float32) / s
        dx, dy = np.meshgrid(gx, gy)
        wide = np.maximum(np.abs(dx) - 0.45 * mw, 0)
        t0, t1 = -0.05 * mw - 0.5 * wide, 0.15 * mw + 0.8 * wide
        below = _smoothstep((dy - t0) / (t1 - t0))
        across = 0.5 + 0.5 * np.cos(math.pi * np.clip((np.abs(dx) - 0.5 * fw) / (0.6 * fw), 0, 1))
        above_chin = 1 - _smoothstep((dy - chin) / (2.5 * drop))
        self._jaw_weight = (below * across * above_chin).astype(np.float32)
        h, w = self._jaw_weight.shape
        self._jaw_grid = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    # -- per frame ----------------------------------------------------------------------------

    def _head_matrix(self, dx: float, dy: float, angle: float, nod: float) -> np.ndarray:
        return head_matrix(self.rig.head_pivot, self.scale, dx, dy, angle, nod)

    def render(self, frame: int, mouth_open: float, gaze: float = 0.0, wide: float = 0.0, nod: float = 0.0) -> np.ndarray:
        """A new HxWx3 uint8 BGR picture of frame `frame`; mouth_open 0..1, gaze 0..1 toward the card (right),
        wide -1 (rounded lips) .. 1 (spread), nod 0..1 (a sentence-end nod, see lips.nod_after)."""
        pose = self.motion.pose(frame)
        mouth_open = min(max(float(mouth_open), 0.0), 1.0)
        gaze = min(max(float(gaze), -1.0), 1.0)
        out = np.empty((self.height, self.width, 3), np.uint8)
        out[: self._top] = self._static
        level = round((pose.breath + 1) / 2 * (BREATH_LEVELS - 1))
        out[self._top :] = self._breaths[level]
        angle = max(-MAX_ANGLE, min(MAX_ANGLE, pose.head_angle + GAZE_ANGLE * gaze))
        head = self._head_matrix(pose.head_dx + GAZE_DX * gaze, pose.head_dy, angle, pose.nod + SENTENCE_NOD * nod)
        opening = mouth_open * self.rig.mouth_max_open
        self._draw_head(out, head, opening)
        eye_gaze = min(max(pose.gaze_x + gaze, -1.0), 1.0)
        for eye in self._eyes:
            eye.draw(out, head[:2], pose.blink, eye_gaze)
        self._mouth.draw(out, head[:2], opening, wide)
        return out

    def _draw_head(self, out: np.ndarray, head: np.ndarray, opening: float) -> None:
        x0, y0, x1, y1 = self._roi
        ox, oy = self._sprite_origin
        sprite_to_roi = (np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ head
                         @ np.diag([1 / self.scale, 1 / self.scale, 1.0]) @ np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]]))
        warped = cv2.warpAffine(self._sprite, sprite_to_roi[:2].astype(np.float32), (x1 - x0, y1 - y0),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        drop = (1 - UPPER_LIP_SHARE) * opening * self.scale
        if drop > 0.02:
            self._drop_jaw(warped, head, drop)
        out[y0:y1, x0:x1] = _over(out[y0:y1, x0:x1], warped)

    def _drop_jaw(self, warped: np.ndarray, head: np.ndarray, drop: float) -> None:
        """Pull the chin down by `drop` output px (smoothly fading out around it), in the warped head region."""
        mx, my = _affine(head[:2], np.array(self.rig.mouth_center))
        bx0, by0, bx1, by1 = self._jaw_box
        ax, ay = int(round(mx)) - self._roi[0] + bx0, int(round(my)) - self._roi[1] + by0
        h, w = warped.shape[:2]
        cx0, cy0, cx1, cy1 = max(ax, 0), max(ay, 0), min(ax + bx1 - bx0, w), min(ay + by1 - by0, h)
        if cx1 <= cx0 or cy1 <= cy0:
            return
        field = self._jaw_weight[cy0 - ay : cy1 - ay, cx0 - ax : cx1 - ax]
        gx = self._jaw_grid[0][: cy1 - cy0, : cx1 - cx0]
        gy = self._jaw_grid[1][: cy1 - cy0, : cx1 - cx0]
        map_y = (gy - np.float32(drop) * field).astype(np.float32)
        region = warped[cy0:cy1, cx0:cx1]
        warped[cy0:cy1, cx0:cx1] = cv2.remap(region, gx, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
