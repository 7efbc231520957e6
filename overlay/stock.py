"""The stock bar under the card: "剩余 left/total", a red fill for what is left, "已抢 N%".

Split in two sprites: the panel (drawn once) and the changing numbers and
fill (drawn per stock count), so a stock count that ticks down every few
frames stays cheap.
"""
from __future__ import annotations

from overlay import palette, shapes
from overlay.layout import Rect
from overlay.sprite import Canvas, Sprite
from overlay.state import StockInfo
from overlay.text import text_mask


def sold_percent(stock: StockInfo) -> int:
    """Share already sold, rounded down so "已抢 100%" only shows when nothing is left."""
    if stock.total <= 0:
        return 100
    left = min(max(stock.left, 0), stock.total)
    return (stock.total - left) * 100 // stock.total


def _bar_geometry(box: Rect, k: float) -> tuple[int, int, int, int]:
    pad = round(16 * k)
    bar_h = round(12 * k)
    return pad, round(0.72 * box.h) - bar_h // 2, box.w - 2 * pad, bar_h


def render_stock_panel(box: Rect, height: int) -> Sprite:
    """The empty panel and bar track, anchored at the top-left of `box`."""
    k = height / 720.0
    shadow = round(18 * k)
    canvas = Canvas(box.w + 2 * shadow, box.h + 2 * shadow)
    body = shapes.rounded_rect(box.w, box.h, 12 * k)
    canvas.paint(shapes.soften(shapes.pad(body, shadow), 7 * k), palette.BLACK, 0, round(4 * k), opacity=0.35)
    canvas.paint(body, palette.CREAM, shadow, shadow)
    x, y, w, h = _bar_geometry(box, k)
    canvas.paint(shapes.rounded_rect(w, h, h / 2), palette.TRACK, shadow + x, shadow + y)
    return canvas.sprite(shadow, shadow)


def render_stock(stock: StockInfo, box: Rect, height: int) -> Sprite:
    """The counts and the fill for `stock`, anchored at the top-left of `box` (goes over the panel)."""
    k = height / 720.0
    canvas = Canvas(box.w, box.h)
    pad = round(16 * k)
    px = round(19 * k)
    row_mid = round(0.36 * box.h)
    left = text_mask(f"剩余 {max(stock.left, 0)}/{stock.total}", px, 450, bold=0.4 * k)
    canvas.paint(left, palette.INK, pad, row_mid - left.shape[0] // 2)
    sold = text_mask(f"已抢 {sold_percent(stock)}%", px, 500, bold=0.5 * k)
    canvas.paint(sold, palette.RED, box.w - pad - sold.shape[1], row_mid - sold.shape[0] // 2)
    x, y, w, h = _bar_geometry(box, k)
    share = 0.0 if stock.total <= 0 else min(max(stock.left / stock.total, 0.0), 1.0)
    fill_w = round(w * share)
    if fill_w > 0:
        canvas.paint(shapes.rounded_rect(fill_w, h, h / 2), shapes.gradient(fill_w, h, palette.ORANGE, palette.RED),
                     x, y)
    return canvas.sprite()
