"""Pre-rendered overlay images and the per-frame blend.

Everything static is painted once into a Sprite holding premultiplied colour
and inverse alpha, so that putting it on a frame costs one multiply and one
add over a small region of interest.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from overlay.layout import Rect

Color = tuple[float, float, float]  # BGR, 0..255


@dataclass(frozen=True, eq=False)
class Sprite:
    color: np.ndarray  # HxWx3 uint8, premultiplied by alpha
    inv: np.ndarray  # HxWx3 uint8, 255 - alpha (repeated per channel)
    x: int  # top-left offset from the anchor point it is drawn at
    y: int

    @property
    def w(self) -> int:
        return self.color.shape[1]

    @property
    def h(self) -> int:
        return self.color.shape[0]

    def faded(self, opacity: float) -> Sprite:
        """The same sprite, `opacity` times as opaque."""
        o = min(max(opacity, 0.0), 1.0)
        return Sprite(cv2.convertScaleAbs(self.color, alpha=o),
                      cv2.convertScaleAbs(self.inv, alpha=o, beta=255.0 * (1.0 - o)),
                      self.x, self.y)

    def scaled(self, factor: float) -> Sprite:
        """The sprite zoomed about its anchor point."""
        w, h = max(1, round(self.w * factor)), max(1, round(self.h * factor))
        interp = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
        # Pad with transparent pixels so the resized edge fades out instead of clamping.
        color = cv2.copyMakeBorder(self.color, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        inv = cv2.copyMakeBorder(self.inv, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        size = (w + 2, h + 2)
        return Sprite(cv2.resize(color, size, interpolation=interp),
                      cv2.resize(inv, size, interpolation=interp),
                      round((self.x - 1) * factor), round((self.y - 1) * factor))


def blend(frame: np.ndarray, sprite: Sprite, ax: int, ay: int, clip: Rect | None = None) -> None:
    """Composite `sprite` anchored at (ax, ay) onto `frame` in place, clipped to the frame (and `clip`)."""
    fh, fw = frame.shape[:2]
    x0, y0 = ax + sprite.x, ay + sprite.y
    lo_x, lo_y, hi_x, hi_y = 0, 0, fw, fh
    if clip is not None:
        lo_x, lo_y = max(lo_x, clip.x), max(lo_y, clip.y)
        hi_x, hi_y = min(hi_x, clip.right), min(hi_y, clip.bottom)
    cx0, cy0 = max(x0, lo_x), max(y0, lo_y)
    cx1, cy1 = min(x0 + sprite.w, hi_x), min(y0 + sprite.h, hi_y)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    sx, sy = cx0 - x0, cy0 - y0
    src = np.s_[sy:sy + cy1 - cy0, sx:sx + cx1 - cx0]
    roi = frame[cy0:cy1, cx0:cx1]
    cv2.multiply(roi, sprite.inv[src], dst=roi, scale=1.0 / 255.0)
    cv2.add(roi, sprite.color[src], dst=roi)


class Canvas:
    """A float premultiplied RGBA scratch image that shapes and text are painted onto."""

    def __init__(self, w: int, h: int) -> None:
        self.color = np.zeros((h, w, 3), np.float32)
        self.alpha = np.zeros((h, w), np.float32)

    @property
    def w(self) -> int:
        return self.alpha.shape[1]

    @property
    def h(self) -> int:
        return self.alpha.shape[0]

    def paint(self, mask: np.ndarray, color: Color | np.ndarray, x: int = 0, y: int = 0,
              opacity: float = 1.0) -> None:
        """Paint colour (a BGR triple or an image the size of `mask`) through `mask` (0..1) at (x, y)."""
        m = mask * np.float32(opacity)
        src = color if isinstance(color, np.ndarray) else np.array(color, np.float32)
        self._over(src * m[..., None], m, x, y)

    def stamp(self, other: Canvas, x: int, y: int) -> None:
        """Lay another canvas over this one with its top-left at (x, y)."""
        self._over(other.color, other.alpha, x, y)

    def _over(self, color: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
        mh, mw = alpha.shape
        cx0, cy0 = max(x, 0), max(y, 0)
        cx1, cy1 = min(x + mw, self.w), min(y + mh, self.h)
        if cx0 >= cx1 or cy0 >= cy1:
            return
        src = np.s_[cy0 - y:cy1 - y, cx0 - x:cx1 - x]
        dst = np.s_[cy0:cy1, cx0:cx1]
        keep = 1.0 - alpha[src]
        dst_c, dst_a = self.color[dst], self.alpha[dst]
        dst_c *= keep[..., None]
        dst_c += color[src]
        dst_a *= keep
        dst_a += alpha[src]

    def sprite(self, anchor_x: int = 0, anchor_y: int = 0) -> Sprite:
        """Freeze into a Sprite trimmed to its visible pixels, anchored at (anchor_x, anchor_y)."""
        a8 = cv2.convertScaleAbs(self.alpha, alpha=255.0)
        x0, y0, w, h = cv2.boundingRect(a8)
        w, h = max(w, 1), max(h, 1)
        color = cv2.convertScaleAbs(self.color[y0:y0 + h, x0:x0 + w])
        inv = cv2.cvtColor(255 - a8[y0:y0 + h, x0:x0 + w], cv2.COLOR_GRAY2BGR)
        return Sprite(color, inv, x0 - anchor_x, y0 - anchor_y)
