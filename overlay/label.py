"""The "AI 数字人主播" disclosure pill shown on every frame (legal requirement for AI hosts)."""
from __future__ import annotations

from overlay import palette, shapes
from overlay.layout import Rect
from overlay.sprite import Canvas, Sprite
from overlay.text import measure, text_mask, truncate


def render_label(text: str, box: Rect) -> Sprite:
    """A dark translucent pill with a status dot and white text, anchored at the box's top-left."""
    h = box.h
    px = round(0.5 * h)
    dot = round(0.26 * h)
    pad = round(0.42 * h)
    gap = round(0.22 * h)
    text = truncate(text, box.w - 2 * pad - dot - gap, lambda s: measure(s, px, 450))
    mask = text_mask(text, px, 450, bold=0.5)
    w = min(box.w, pad + dot + gap + mask.shape[1] + pad)
    canvas = Canvas(w, h)
    canvas.paint(shapes.rounded_rect(w, h, h / 2), palette.BLACK, opacity=0.55)
    canvas.paint(shapes.disc(w, h, pad + dot / 2, h / 2, dot / 2), palette.TEAL)
    canvas.paint(mask, palette.WHITE, pad + dot + gap, (h - mask.shape[0]) // 2)
    return canvas.sprite()
