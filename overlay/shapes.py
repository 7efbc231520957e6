"""Anti-aliased shape masks (0..1 float) and colour fills for painting sprites.

Shapes are drawn supersampled and area-averaged: they are rendered once per
cache entry, so quality beats speed here.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from overlay.sprite import Color

_SS = 4  # supersampling factor


def _downsample(big: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def rounded_rect(w: int, h: int, r: float) -> np.ndarray:
    s = _SS
    big = np.zeros((h * s, w * s), np.uint8)
    rr = max(0, min(round(r * s), h * s // 2, w * s // 2))
    cv2.rectangle(big, (rr, 0), (w * s - 1 - rr, h * s - 1), 255, -1)
    cv2.rectangle(big, (0, rr), (w * s - 1, h * s - 1 - rr), 255, -1)
    if rr > 0:
        for cx in (rr, w * s - 1 - rr):
            for cy in (rr, h * s - 1 - rr):
                cv2.circle(big, (cx, cy), rr, 255, -1)
    return _downsample(big, w, h)


def polygon(w: int, h: int, points: Sequence[tuple[float, float]]) -> np.ndarray:
    s = _SS
    big = np.zeros((h * s, w * s), np.uint8)
    pts = np.round(np.array(points, np.float64) * s).astype(np.int32)
    cv2.fillPoly(big, [pts], 255)
    return _downsample(big, w, h)


def disc(w: int, h: int, cx: float, cy: float, r: float) -> np.ndarray:
    s = _SS
    big = np.zeros((h * s, w * s), np.uint8)
    cv2.circle(big, (round(cx * s), round(cy * s)), round(r * s), 255, -1)
    return _downsample(big, w, h)


def star(w: int, h: int, cx: float, cy: float, r_out: float, r_in: float, points: int,
         phase: float = 0.0) -> np.ndarray:
    """A starburst with `points` spikes; `phase` rotates it (radians)."""
    ang = phase - np.pi / 2 + np.arange(2 * points) * np.pi / points
    rad = np.where(np.arange(2 * points) % 2 == 0, r_out, r_in)
    return polygon(w, h, list(zip(cx + rad * np.cos(ang), cy + rad * np.sin(ang))))


def grow(mask: np.ndarray, r: float) -> np.ndarray:
    """Mask thickened by `r` pixels (for outlines)."""
    k = max(1, round(2 * r + 1))
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


def soften(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-blurred mask (for shadows and glows)."""
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def gradient(w: int, h: int, c0: Color, c1: Color, horizontal: bool = True) -> np.ndarray:
    """Linear BGR gradient from c0 to c1."""
    n = w if horizontal else h
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    line = (1.0 - t) * np.array(c0, np.float32) + t * np.array(c1, np.float32)
    if horizontal:
        return np.broadcast_to(line[None, :, :], (h, w, 3)).copy()
    return np.broadcast_to(line[:, None, :], (h, w, 3)).copy()


def radial(w: int, h: int, cx: float, cy: float, r: float, c0: Color, c1: Color) -> np.ndarray:
    """BGR gradient from c0 at (cx, cy) to c1 at distance r and beyond."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.minimum(np.hypot(xx - cx, yy - cy) / np.float32(r), 1.0)[..., None]
    return (1.0 - t) * np.array(c0, np.float32) + t * np.array(c1, np.float32)


def pad(mask: np.ndarray, p: int) -> np.ndarray:
    """Mask with `p` empty pixels on each side (room for outlines and shadows)."""
    return cv2.copyMakeBorder(mask, p, p, p, p, cv2.BORDER_CONSTANT, value=0)
