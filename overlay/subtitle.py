"""Subtitles: white text with a dark outline, centred in the bottom band, at most two lines."""
from __future__ import annotations

from overlay import palette, shapes
from overlay.layout import Rect
from overlay.sprite import Canvas, Sprite
from overlay.text import fit, measure, text_block

_ONE_LINE = (0.050, 0.046, 0.042)  # font sizes tried for a single line, fractions of H
_TWO_LINES = (0.040, 0.037, 0.034, 0.031, 0.028)
_WEIGHT = 450


def subtitle_lines(text: str, max_width: int, height: int) -> tuple[int, list[str]]:
    """Font size and lines: one line if it fits at a big size, else two balanced, smaller lines."""
    for f in _ONE_LINE:
        px = round(f * height)
        if measure(text, px, _WEIGHT) <= max_width:
            return px, [text]
    return fit(text, max_width, 2, [round(f * height) for f in _TWO_LINES], _WEIGHT)


def render_subtitle(text: str, band: Rect, height: int) -> Sprite:
    """The subtitle sprite, anchored at the top-left of `band` and no bigger than it."""
    k = height / 720.0
    edge = round(3 * k)
    px, lines = subtitle_lines(text, band.w - 4 * edge, height)
    glyphs = shapes.pad(text_block(lines, px, _WEIGHT, bold=0.5 * k, spacing=0.92), 2 * edge)
    outline = shapes.grow(glyphs, 2.2 * k)
    gh, gw = glyphs.shape
    x, y = (band.w - gw) // 2, max(0, (band.h - gh) // 2)
    canvas = Canvas(band.w, band.h)
    canvas.paint(shapes.soften(outline, 3 * k), palette.BLACK, x, y + round(2 * k), opacity=0.5)
    canvas.paint(outline, palette.BLACK, x, y, opacity=0.85)
    canvas.paint(glyphs, palette.WHITE, x, y)
    return canvas.sprite()
