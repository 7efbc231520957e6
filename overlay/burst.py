"""The "上链接！" burst: a gold starburst behind a red ribbon banner, fired when the link goes live."""
from __future__ import annotations

import numpy as np

from overlay import palette, shapes
from overlay.sprite import Canvas, Sprite
from overlay.text import text_mask

BURST_TEXT = "上链接！"
_RAYS = 18


def render_burst(half_width: int, height: int, phase: int) -> Sprite:
    """The burst anchored at its centre, fitting 2 * `half_width`; `phase` 0/1 turns the rays half a step."""
    k = height / 720.0
    r = round(0.84 * half_width)
    size = 2 * half_width + 2
    c = size / 2
    canvas = Canvas(size, size)
    turn = np.pi / _RAYS * phase
    canvas.paint(shapes.soften(shapes.disc(size, size, c, c, 0.75 * r), 16 * k), palette.GOLD, opacity=0.7)
    rays = shapes.star(size, size, c, c, r, 0.74 * r, _RAYS, turn)
    canvas.paint(rays, shapes.radial(size, size, c, c, r, palette.GOLD_LIGHT, palette.ORANGE))
    canvas.paint(shapes.disc(size, size, c, c, 0.6 * r), palette.GOLD_LIGHT, opacity=0.6)

    ban_w, ban_h = round(1.8 * half_width), round(92 * k)
    bx, by = round(c - ban_w / 2), round(c - ban_h / 2)
    tail = round(26 * k)
    for side in (-1, 1):
        x_out = c + side * (ban_w / 2 + tail * 0.2)
        x_in = c + side * (ban_w / 2 - tail * 1.6)
        y0, y1 = by + round(14 * k), by + ban_h + round(14 * k)
        notch = x_out - side * tail * 0.6
        pts = [(x_in, y0), (x_out, y0), (notch, (y0 + y1) / 2), (x_out, y1), (x_in, y1)]
        canvas.paint(shapes.polygon(size, size, pts), palette.RED_DEEP)
    banner = shapes.rounded_rect(ban_w, ban_h, 10 * k)
    canvas.paint(shapes.soften(shapes.pad(banner, 12), 6 * k), palette.BLACK, bx - 12, by - 12 + round(5 * k),
                 opacity=0.35)
    canvas.paint(banner, palette.GOLD, bx, by)
    edge = round(4 * k)
    inner = shapes.rounded_rect(ban_w - 2 * edge, ban_h - 2 * edge, 8 * k)
    canvas.paint(inner, shapes.gradient(ban_w - 2 * edge, ban_h - 2 * edge, palette.RED, palette.RED_DEEP,
                                        horizontal=False), bx + edge, by + edge)

    px = round(62 * k)
    glyphs = text_mask(BURST_TEXT, px, 800, bold=2.2 * k)
    while glyphs.shape[1] > ban_w - 2 * round(22 * k) and px > 12:
        px -= 2
        glyphs = text_mask(BURST_TEXT, px, 800, bold=2.2 * k)
    gx, gy = round(c - glyphs.shape[1] / 2), round(c - glyphs.shape[0] / 2)
    outline = shapes.grow(shapes.pad(glyphs, 6), 3 * k)
    canvas.paint(outline, palette.RED_DEEP, gx - 6, gy - 6 + round(2 * k))
    fill = shapes.gradient(glyphs.shape[1], glyphs.shape[0], palette.WHITE, palette.GOLD_LIGHT, horizontal=False)
    canvas.paint(glyphs, fill, gx, gy)
    return canvas.sprite(round(c), round(c))
