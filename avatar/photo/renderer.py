"""A photo pack on screen: the portrait itself, its face warped in place per frame.

There are no layers to move, so every motion is one displacement field over the head's
region, applied with a single cv2.remap: the head sways, tilts and nods with a weight
that is 1 on the head and fades to 0 at the region's edge (so the warped region meets
the untouched photo with no seam); the jaw drops and the lips part, spread or round
around the rig's mouth line; the upper lids slide down over the eyes to blink and the
irises shift to glance. The mouth's opening is then filled with a dark cavity and a hint
of teeth. Everything static (breath pictures, weights, lip fields) is prepared once;
a frame costs a copy, the field's arithmetic over the head's region, the remap, and a
small polygon fill.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from avatar.host.motion import MAX_ANGLE, Motion
from avatar.host.pack import PhotoPack
from avatar.host.renderer import (
    GAZE_ANGLE,
    GAZE_DX,
    SENTENCE_NOD,
    SUB,
    UPPER_LIP_SHARE,
    _blend_masked,
    _smoothstep,
    head_matrix,
    width_factor,
)

BREATH_LEVELS = 8  # prepared full pictures across one breath
BREATH_RISE = 1.4  # native px the shoulders rise at the top of a breath
HEAD_INNER = (0.62, 0.72)  # the head ellipse that moves rigidly, in face-box widths and heights
HEAD_FADE = 1.5  # the weight reaches 0 at this multiple of the inner ellipse
LID_FOLD = 1.2  # eye heights of lid skin above the lid margin that slide down in a blink
IRIS_SHIFT = 0.18  # of the eye's width, at gaze 1
TEETH_SHOW = 0.06  # rest gap (share of mouth width) above which the photo's own teeth show: none drawn


def _profile(t: np.ndarray, power: float) -> np.ndarray:
    return np.clip(1 - t * t, 0, 1) ** power


class _EyeWarp:
    """One eye's blink and glance as an inverse map, evaluated at head-local source points."""

    def __init__(self, center: tuple[float, float], width: float, height: float) -> None:
        self.cx, self.cy = center
        self.hw, self.h = width / 2, height
        self.box = (center[0] - 1.15 * self.hw, center[1] - (0.5 + LID_FOLD) * height - 1,
                    center[0] + 1.15 * self.hw, center[1] + 0.5 * height + 1)

    def apply(self, qx: np.ndarray, qy: np.ndarray, blink: float, gaze: float) -> tuple[np.ndarray, np.ndarray]:
        t = (qx - self.cx) / self.hw
        half = 0.5 * self.h * _profile(t, 0.7)
        upper, lower = self.cy - half, self.cy + half
        top = upper - LID_FOLD * self.h
        lid = upper + 0.96 * blink * (lower - upper)
        sy = qy.copy()
        if blink > 0:
            on_lid = (qy >= top) & (qy < lid)
            sy = np.where(on_lid, top + (qy - top) * (upper - top) / np.maximum(lid - top, 1e-3), sy)
            in_eye = (qy >= lid) & (qy < lower)
            sy = np.where(in_eye, upper + (qy - lid) * (lower - upper) / np.maximum(lower - lid, 1e-3), sy)
        sx = qx
        if gaze != 0:
            inside = np.clip((lower - qy) * (qy - upper), 0, None) / np.maximum(half * half, 1e-3)
            sx = qx - gaze * IRIS_SHIFT * 2 * self.hw * inside * _profile(t, 1.0)
        return sx, sy


class PhotoHostRenderer:
    """Renders frame n of a photo host; same interface as avatar.host.renderer.HostRenderer."""

    def __init__(self, pack: PhotoPack, width: int, height: int, seed: int = 0) -> None:
        nw, nh = pack.size
        self.scale = s = width / nw
        if abs(height / nh - s) > 0.01:
            raise ValueError(f"{width}x{height} does not have the pack's aspect ({nw}x{nh})")
        self.width, self.height = width, height
        self.pack, self.rig = pack, pack.rig
        self.motion = Motion(seed)
        photo = pack.photo if (width, height) == pack.size else cv2.resize(
            pack.photo, (width, height), interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
        self._prepare_head()
        self._prepare_breath(photo)
        self._prepare_mouth()
        rig = self.rig
        self._eyes = [_EyeWarp((e.center[0] * s, e.center[1] * s), e.width * s, e.height * s)
                      for e in (rig.eye_left, rig.eye_right)]

    # -- preparation ------------------------------------------------------------------------

    def _prepare_head(self) -> None:
        """The head's region and its weight: 1 on the head, easing to 0 at the region's edge."""
        s = self.scale
        x0, y0, x1, y1 = (v * s for v in self.rig.face_box)
        fw, fh = x1 - x0, y1 - y0
        self._head_center = cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * fh
        ax, ay = HEAD_INNER[0] * fw, HEAD_INNER[1] * fh
        rx0, ry0 = max(int(cx - HEAD_FADE * ax), 0), max(int(cy - HEAD_FADE * ay), 0)
        rx1, ry1 = min(int(cx + HEAD_FADE * ax) + 1, self.width), min(int(cy + HEAD_FADE * ay) + 1, self.height)
        self.region = self._region = (rx0, ry0, rx1, ry1)  # x0, y0, x1, y1: the only pixels a frame warps
        X, Y = np.meshgrid(np.arange(rx0, rx1, dtype=np.float32), np.arange(ry0, ry1, dtype=np.float32))
        q = np.sqrt(((X - cx) / ax) ** 2 + ((Y - cy) / ay) ** 2)
        w = (1 - _smoothstep((q - 1) / (HEAD_FADE - 1))).astype(np.float32)
        # the weight is exactly 0 on the region's border, so the warp meets the still photo seamlessly
        w[0, :] = w[-1, :] = w[:, 0] = w[:, -1] = 0
        self._grid = (X, Y)
        self._w = w
        self._wx, self._wy = (w * X).astype(np.float32), (w * Y).astype(np.float32)

    def _prepare_breath(self, photo: np.ndarray) -> None:
        """Whole pictures for BREATH_LEVELS breath values: the chest and shoulders below the head rise."""
        s = self.scale
        x0, _, x1, _ = (v * s for v in self.rig.face_box)
        top = self.rig.head_pivot[1] * s
        h, w = self.height, self.width
        ys = np.arange(h, dtype=np.float32)
        rows = np.where(ys > top, np.sin(np.pi * np.clip((ys - top) / max(h - top, 1), 0, 1)), 0).astype(np.float32)
        across = np.abs(np.arange(w, dtype=np.float32) - (x0 + x1) / 2) / (2.2 * (x1 - x0))
        cols = (0.5 + 0.5 * np.cos(np.pi * np.clip(across, 0, 1))).astype(np.float32)  # nothing moves far from the body
        shape = rows[:, None] * cols[None, :]
        X, Y = np.meshgrid(np.arange(w, dtype=np.float32), ys)
        self._breaths = []
        for b in np.linspace(-1.0, 1.0, BREATH_LEVELS):
            map_y = (Y + np.float32(b * BREATH_RISE * s) * shape).astype(np.float32)  # source below: the body rises
            self._breaths.append(cv2.remap(photo, X, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))

    def _prepare_mouth(self) -> None:
        """Static lip and jaw fields around the mouth (output px), scaled per frame by the opening and shape."""
        s, rig = self.scale, self.rig
        pts = {k: (v[0] * s, v[1] * s) for k, v in self.pack.points.items()}
        # where the mouth splits: the lips' meeting line, or the lower lip's inner edge when the photo shows
        # teeth (upper teeth stay with the upper lip, the jaw takes the lower lip down)
        mx, my = rig.mouth_center[0] * s, (rig.mouth_center[1] + self.pack.rest_gap / 2) * s
        (lx, ly), (rx, ry) = pts["mouth_left"], pts["mouth_right"]
        self._mc = (mx, my)
        self._hw = hw = max((rx - lx) / 2, 2.0)
        mid = (lx + rx) / 2
        # the lips' meeting line: y = a*u^2 + b*u through both corners and the centre (u = x - mx)
        ul, ur = lx - mx, rx - mx
        A = np.array([[ul * ul, ul], [ur * ur, ur]])
        self._line_ab = np.linalg.solve(A, [ly - my, ry - my]) if abs(np.linalg.det(A)) > 1e-6 else np.zeros(2)
        thick_up = max(my - pts["upper_lip"][1], 2.0 * s)
        chin = max(pts["chin"][1] - my, 4.0 * s)
        fw = (rig.face_box[2] - rig.face_box[0]) * s
        drop = (1 - UPPER_LIP_SHARE) * rig.mouth_max_open * s
        bx0, bx1 = int(mx - 0.75 * fw), int(mx + 0.75 * fw) + 1
        by0, by1 = int(my - 2.2 * thick_up - 2), int(my + chin + 0.8 * chin + drop) + 2
        self._mbox = (bx0, by0, bx1, by1)
        X, Y = np.meshgrid(np.arange(bx0, bx1, dtype=np.float32), np.arange(by0, by1, dtype=np.float32))
        u = X - mx
        line = my + self._line_ab[0] * u * u + self._line_ab[1] * u
        lens = _profile((X - mid) / hw, 0.65)
        across = 0.5 + 0.5 * np.cos(np.pi * np.clip((np.abs(u) - 0.35 * fw) / (0.4 * fw), 0, 1))
        below = Y >= line
        v = (Y - line) / chin
        jaw = lens + (across - lens) * _smoothstep(v / 0.6)
        fade = 1 - _smoothstep((Y - (my + chin)) / (0.8 * chin))
        self._jaw = np.where(below, jaw * fade, 0).astype(np.float32)
        self._lip = np.where(below, 0, lens * (1 - _smoothstep((line - Y) / (2.0 * thick_up)))).astype(np.float32)
        near = np.exp(-(u / (1.1 * hw)) ** 2 - ((Y - my) / (1.6 * thick_up + 0.5 * chin)) ** 2)
        self._spread = (np.clip(u / hw, -1.5, 1.5) * near).astype(np.float32)
        self._spread_gain = 1 / math.exp(-(1 / 1.1) ** 2)  # the corners move by the full amount
        self._gap_teeth = self.pack.rest_gap < TEETH_SHOW * 2 * hw
        t = np.linspace(-1.0, 1.0, 21)
        self._t = t
        self._lens_t = _profile(t, 0.65)
        self._mid = mid

    # -- per frame ----------------------------------------------------------------------------

    def render(self, frame: int, mouth_open: float, gaze: float = 0.0, wide: float = 0.0, nod: float = 0.0) -> np.ndarray:
        """A new HxWx3 uint8 BGR picture of frame `frame`; mouth_open 0..1, gaze 0..1 toward the card (right),
        wide -1 (rounded lips) .. 1 (spread), nod 0..1 (a sentence-end nod)."""
        pose = self.motion.pose(frame)
        opening = min(max(float(mouth_open), 0.0), 1.0) * self.rig.mouth_max_open * self.scale
        gaze = min(max(float(gaze), -1.0), 1.0)
        level = round((pose.breath + 1) / 2 * (BREATH_LEVELS - 1))
        source = self._breaths[level]
        out = source.copy()
        angle = max(-MAX_ANGLE, min(MAX_ANGLE, pose.head_angle + GAZE_ANGLE * gaze))
        head = head_matrix(self.rig.head_pivot, self.scale, pose.head_dx + GAZE_DX * gaze, pose.head_dy, angle,
                           pose.nod + SENTENCE_NOD * nod)
        inv = np.linalg.inv(head @ np.diag([1 / self.scale, 1 / self.scale, 1.0]))  # output px -> source px
        X, Y = self._grid
        a, b, c = inv[0]
        d, e, f = inv[1]
        # src = p + w * (inv(p) - p): rigid on the head, fading to the identity at the region's edge
        map_x = cv2.add(cv2.scaleAdd(self._w, c, cv2.addWeighted(self._wx, a - 1, self._wy, b, 0)), X)
        map_y = cv2.add(cv2.scaleAdd(self._w, f, cv2.addWeighted(self._wx, d, self._wy, e - 1, 0)), Y)
        wide_px = (width_factor(wide) - 1) * self._hw
        if opening > 0.02 or abs(wide_px) > 0.02:
            self._warp_mouth(map_x, map_y, head, opening, wide_px)
        eye_gaze = min(max(pose.gaze_x + gaze, -1.0), 1.0)
        for eye in self._eyes:
            self._warp_eye(eye, map_x, map_y, head, pose.blink, eye_gaze)
        x0, y0, x1, y1 = self._region
        fixed, frac = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)  # fixed-point maps remap ~30% faster
        out[y0:y1, x0:x1] = cv2.remap(source, fixed, frac, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if opening > 0.6:
            self._draw_cavity(out, head, opening, wide)
        return out

    def _sub(self, box: tuple[float, float, float, float], head: np.ndarray) -> tuple[int, int, int, int] | None:
        """The part of the head's region (region-relative slice bounds) where a source box lands this frame."""
        x0, y0, x1, y1 = box
        corners = np.array([(x0, y0), (x1, y0), (x0, y1), (x1, y1)]) / self.scale
        p = corners @ head[:2, :2].T + head[:2, 2]
        rx0, ry0, rx1, ry1 = self._region
        sx0, sy0 = np.floor(p.min(axis=0)).astype(int) - 1
        sx1, sy1 = np.ceil(p.max(axis=0)).astype(int) + 2
        sx0, sy0, sx1, sy1 = max(sx0, rx0), max(sy0, ry0), min(sx1, rx1), min(sy1, ry1)
        if sx1 <= sx0 or sy1 <= sy0:
            return None
        return sx0 - rx0, sy0 - ry0, sx1 - rx0, sy1 - ry0

    def _warp_mouth(self, map_x: np.ndarray, map_y: np.ndarray, head: np.ndarray, opening: float, wide_px: float) -> None:
        """Compose the lips' and jaw's displacement (defined in source space) after the head's map."""
        sub = self._sub(self._mbox, head)
        if sub is None:
            return
        i0, j0, i1, j1 = sub
        qx, qy = map_x[j0:j1, i0:i1], map_y[j0:j1, i0:i1]
        drop, lift = (1 - UPPER_LIP_SHARE) * opening, UPPER_LIP_SHARE * opening
        disp = cv2.merge([cv2.multiply(self._spread, wide_px * self._spread_gain),
                          cv2.addWeighted(self._jaw, drop, self._lip, -lift, 0)])
        bx0, by0, _, _ = self._mbox
        # the source point is q - disp(source): start from q - disp(q), then one fixed-point step
        sx, sy = qx, qy
        for _ in range(2):
            moved = cv2.remap(disp, cv2.subtract(sx, float(bx0)), cv2.subtract(sy, float(by0)), cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            sx, sy = cv2.subtract(qx, moved[..., 0]), cv2.subtract(qy, moved[..., 1])
        map_x[j0:j1, i0:i1] = sx
        map_y[j0:j1, i0:i1] = sy

    def _warp_eye(self, eye: _EyeWarp, map_x: np.ndarray, map_y: np.ndarray, head: np.ndarray, blink: float,
                  gaze: float) -> None:
        if blink <= 0 and gaze == 0:
            return
        sub = self._sub(eye.box, head)
        if sub is None:
            return
        i0, j0, i1, j1 = sub
        sx, sy = eye.apply(map_x[j0:j1, i0:i1], map_y[j0:j1, i0:i1], blink, gaze)
        map_x[j0:j1, i0:i1] = sx
        map_y[j0:j1, i0:i1] = sy

    def _draw_cavity(self, out: np.ndarray, head: np.ndarray, opening: float, wide: float) -> None:
        """The mouth's opening: a dark cavity between the parted lips, a hint of upper teeth."""
        s, pal = self.scale, self.pack.palette
        mx, my = self._mc
        k = width_factor(wide)
        x = self._mid + self._t * self._hw * k
        u = x - mx
        line = my + self._line_ab[0] * u * u + self._line_ab[1] * u
        lens = self._lens_t
        upper = line - UPPER_LIP_SHARE * opening * lens
        lower = line + (1 - UPPER_LIP_SHARE) * opening * lens
        teeth = upper + min(0.3 * opening, 0.1 * 2 * self._hw) * _profile(self._t / 0.8, 2.0)
        pts = np.column_stack([np.tile(x, 3), np.concatenate([upper, lower, teeth])]) / s
        p = pts @ head[:2, :2].T + head[:2, 2]
        x0, y0 = np.floor(p.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(p.max(axis=0)).astype(int) + 3
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.width), min(y1, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        patch = out[y0:y1, x0:x1]
        f = np.round((p - (x0, y0)) * SUB).astype(np.int32)
        n = len(x)
        f_up, f_low, f_teeth = f[:n], f[n : 2 * n], f[2 * n :]
        layer = np.empty_like(patch)
        layer[:] = pal.cavity
        if self._gap_teeth:
            cv2.fillPoly(layer, [np.vstack([f_up, f_teeth[::-1]])], pal.teeth, cv2.LINE_AA, shift=4)
        mask = np.zeros(patch.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.vstack([f_up, f_low[::-1]])], 255, cv2.LINE_AA, shift=4)
        tongue = ((f_low[n // 2] + f_up[n // 2]) // 2 + (0, int(0.3 * opening * SUB))).astype(int)
        axes = (int(0.55 * self._hw * k * SUB), int(max(0.3 * opening, 0.5) * SUB))
        cv2.ellipse(layer, (int(tongue[0]), int(tongue[1])), axes, 0, 180, 360, pal.tongue, -1, cv2.LINE_AA, shift=4)
        _blend_masked(patch, layer, mask)
