"""The answer banner: "@昵称" on a gold tag and the host's answer, shown while the host says it.

Viewers who asked see their name on screen with the answer (the subtitle shows the words
being spoken; the banner keeps the whole answer up until the host has said it).
"""
from __future__ import annotations

from overlay import palette, shapes
from overlay.layout import Rect
from overlay.sprite import Canvas, Sprite
from overlay.state import BannerInfo
from overlay.text import fit, measure, text_block, text_mask, truncate

_WEIGHT = 450


def render_banner(info: BannerInfo, box: Rect, height: int) -> Sprite:
    """A dark translucent panel anchored at the box's top-left: the askers' tag, then up to two lines of answer."""
    k = height / 720.0
    pad, gap = round(14 * k), round(8 * k)
    tag_px = round(22 * k)
    who = truncate(info.who, box.w - 2 * pad - round(24 * k), lambda s: measure(s, tag_px, 600))
    tag = text_mask(who, tag_px, 600, bold=0.6 * k)
    tag_h = round(34 * k)
    tag_w = tag.shape[1] + round(24 * k)
    px, lines = fit(info.text, box.w - 2 * pad, 2, [round(26 * k), round(24 * k), round(22 * k), round(20 * k)], _WEIGHT)
    body = text_block(lines, px, _WEIGHT, bold=0.4 * k, spacing=0.95, centred=False)
    w = min(box.w, max(tag_w, body.shape[1]) + 2 * pad)
    h = min(box.h, pad + tag_h + gap + body.shape[0] + pad)
    canvas = Canvas(w, h)
    canvas.paint(shapes.rounded_rect(w, h, 12 * k), palette.BLACK, opacity=0.62)
    canvas.paint(shapes.rounded_rect(tag_w, tag_h, tag_h / 2), palette.GOLD, pad, pad)
    canvas.paint(tag, palette.RED_DEEP, pad + round(12 * k), pad + (tag_h - tag.shape[0]) // 2)
    canvas.paint(body, palette.WHITE, pad, pad + tag_h + gap)
    return canvas.sprite()
