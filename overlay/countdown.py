"""The "3、2、1" countdown: a huge white digit in a red medallion over the card."""
from __future__ import annotations

from overlay import palette, shapes
from overlay.sprite import Canvas, Sprite
from overlay.text import text_mask


def render_countdown(digit: int, radius: int, height: int) -> Sprite:
    """The medallion for `digit`, anchored at its centre."""
    k = height / 720.0
    glow = round(22 * k)
    size = 2 * (radius + glow)
    c = size / 2
    canvas = Canvas(size, size)
    canvas.paint(shapes.soften(shapes.disc(size, size, c, c, radius), 10 * k), palette.GOLD, opacity=0.75)
    canvas.paint(shapes.disc(size, size, c, c, radius), palette.WHITE)
    inner = radius - round(7 * k)
    disc = shapes.disc(size, size, c, c, inner)
    canvas.paint(disc, shapes.gradient(size, size, palette.ORANGE, palette.RED_DEEP, horizontal=False))
    canvas.paint(shapes.disc(size, size, c, c - 0.08 * inner, 0.86 * inner), palette.WHITE, opacity=0.08)
    px = round(1.25 * inner)
    glyph = text_mask(str(digit), px, 800, bold=2.0 * k)
    gx, gy = round(c - glyph.shape[1] / 2), round(c - glyph.shape[0] / 2)
    canvas.paint(shapes.soften(glyph, 4 * k), palette.RED_DEEP, gx, gy + round(4 * k), opacity=0.8)
    canvas.paint(glyph, palette.WHITE, gx, gy)
    return canvas.sprite(round(c), round(c))
