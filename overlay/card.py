"""The product card: link number, name, live price vs. struck-through original, coupon ticket.

Rendered once per CardInfo; sizes are written in 720p pixels and scaled by
`height / 720`, so the card looks the same at every resolution.
"""
from __future__ import annotations

import numpy as np

from overlay import palette, shapes
from overlay.layout import Rect
from overlay.sprite import Canvas, Sprite
from overlay.state import CardInfo
from overlay.text import ascent, fit, measure, text_block, text_mask


def _bar(w: int, h: int) -> np.ndarray:
    return np.ones((max(1, h), max(1, w)), np.float32)


def _coupon(text: str, k: float, max_w: int) -> Canvas:
    """A red-outlined ticket: a solid "券" stub, a notch, then the coupon text."""
    h = round(40 * k)
    px = round(20 * k)
    stub = round(38 * k)
    pad = round(12 * k)
    line = max(1, round(2 * k))
    px, lines = fit(text, max_w - stub - 2 * pad, 1, [px, round(17 * k), round(14 * k)], 500)
    label = text_mask(lines[0], px, 500, bold=0.4 * k)
    w = stub + 2 * pad + label.shape[1]
    t = Canvas(w, h)
    t.paint(shapes.rounded_rect(w, h, 6 * k), palette.RED)
    body = shapes.rounded_rect(w - stub - line, h - 2 * line, 4 * k)
    t.paint(body, (232, 240, 255), stub, line)
    quan = text_mask("券", round(19 * k), 600, bold=0.6 * k)
    t.paint(quan, palette.WHITE, (stub - quan.shape[1]) // 2, (h - quan.shape[0]) // 2)
    notch = round(5 * k)
    for cy in (0, h):
        t.paint(shapes.disc(2 * notch + 2, 2 * notch + 2, notch + 1, notch + 1, notch),
                palette.CREAM, stub - notch - 1, cy - notch - 1)
    t.paint(label, palette.RED, stub + pad, (h - label.shape[0]) // 2)
    return t


def render_card(info: CardInfo, box: Rect, height: int) -> Sprite:
    """The card sprite, anchored at the top-left of `box`, with a soft drop shadow around it."""
    k = height / 720.0
    w, h = box.w, box.h
    shadow = round(24 * k)
    canvas = Canvas(w + 2 * shadow, h + 2 * shadow)
    body = shapes.rounded_rect(w, h, 16 * k)
    canvas.paint(shapes.soften(shapes.pad(body, shadow), 9 * k), palette.BLACK,
                 0, round(5 * k), opacity=0.4)
    canvas.paint(body, palette.CREAM, shadow, shadow)

    head_h = round(50 * k)
    head = shapes.gradient(w, head_h, palette.RED, palette.ORANGE)
    canvas.paint(body[:head_h], head, shadow, shadow)
    pad = round(18 * k)
    link = text_mask(f"{info.link_no}号链接", round(27 * k), 500, bold=0.9 * k)
    canvas.paint(link, palette.WHITE, shadow + pad, shadow + (head_h - link.shape[0]) // 2)
    canvas.paint(_bar(w, round(3 * k)), palette.GOLD, shadow, shadow + head_h)

    x0, inner = shadow + pad, w - 2 * pad
    y = shadow + head_h + round(12 * k)
    sizes = [round(25 * k), round(23 * k), round(21 * k)]
    px, lines = fit(info.name, inner, 2, sizes, 450)
    canvas.paint(text_block(lines, px, 450, bold=0.4 * k, spacing=0.95, centred=False), palette.INK, x0, y)
    y += round(2 * 1.3 * 25 * k * 0.95) + round(8 * k)

    coupon = _coupon(info.coupon, k, inner) if info.coupon else None
    bottom = shadow + h - round(16 * k) - (coupon.h + round(12 * k) if coupon else 0)
    pill_h = round(28 * k)
    price = _price_row(info, k, inner)
    # Centre the label + price group in the room left between the name and the coupon.
    group_h = pill_h + round(6 * k) + price.h
    y = max(y, y + (bottom - y - group_h) // 2)
    tag = text_mask("直播间到手价", round(17 * k), 500, bold=0.5 * k)
    pill_w = tag.shape[1] + round(20 * k)
    canvas.paint(shapes.rounded_rect(pill_w, pill_h, pill_h / 2), palette.RED, x0, y)
    canvas.paint(tag, palette.WHITE, x0 + round(10 * k), y + (pill_h - tag.shape[0]) // 2)
    canvas.stamp(price, x0, y + pill_h + round(6 * k))
    if coupon is not None:
        canvas.stamp(coupon, x0, bottom + round(12 * k))
    return canvas.sprite(shadow, shadow)


def _price_row(info: CardInfo, k: float, max_w: int) -> Canvas:
    """"¥199" large in red, then "¥399" small, grey and struck through (below it when out of room)."""
    yen_px = round(36 * k)
    digits_px = round(74 * k)
    old_px = round(24 * k)
    old = text_mask(f"¥{info.price}", old_px, 400)
    yen = text_mask("¥", yen_px, 600, bold=0.6 * k)
    gap = round(4 * k)
    while digits_px > 20 * k and yen.shape[1] + gap + measure(info.live_price, digits_px, 700) > max_w:
        digits_px -= 2
    digits = text_mask(info.live_price, digits_px, 700, bold=1.0 * k)
    base = round(0.8 * digits_px)
    dx = yen.shape[1] + gap
    ox, oy = dx + digits.shape[1] + round(12 * k), base
    if ox + old.shape[1] > max_w:
        ox, oy = 0, base + round(32 * k)
    row = Canvas(max_w, oy + round(0.2 * digits_px))
    row.paint(yen, palette.RED, 0, base - ascent(yen_px))
    row.paint(digits, palette.RED, dx, base - ascent(digits_px))
    row.paint(old, palette.GREY, ox, oy - ascent(old_px))
    strike = _bar(old.shape[1] + round(4 * k), round(2 * k))
    row.paint(strike, palette.GREY, ox - round(2 * k), oy - round(0.36 * old_px))
    return row
