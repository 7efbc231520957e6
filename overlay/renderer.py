"""Burns the overlays of one OverlayState into a video frame.

All pixels are painted into cached sprites the first time a given card,
stock count, subtitle, countdown step or burst step is needed; a frame only
blends those sprites onto small regions.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from overlay import anim
from overlay.banner import render_banner
from overlay.burst import render_burst
from overlay.card import render_card
from overlay.countdown import render_countdown
from overlay.label import render_label
from overlay.layout import make_layout
from overlay.sprite import Sprite, blend
from overlay.state import CardInfo, OverlayState, StockInfo
from overlay.stock import render_stock, render_stock_panel
from overlay.subtitle import render_subtitle

_SLIDE = 0.06  # the card slides in from this far right (fraction of W)


class OverlayRenderer:
    def __init__(self, width: int, height: int, label: str = "AI 数字人主播") -> None:
        self.layout = lay = make_layout(width, height)
        self._label = render_label(label, lay.label)
        self._card = lru_cache(maxsize=16)(lambda info: render_card(info, lay.card, height))
        self._stock_panel = render_stock_panel(lay.stock, height)
        self._stock = lru_cache(maxsize=64)(lambda s: render_stock(s, lay.stock, height))
        self._subtitle = lru_cache(maxsize=64)(lambda t: render_subtitle(t, lay.subtitle, height))
        self._banner = lru_cache(maxsize=16)(lambda b: render_banner(b, lay.banner, height))
        radius = min(round(0.15 * height), lay.effects.w // 2, lay.effects.h // 2)
        self._digit = lru_cache(maxsize=8)(lambda d: render_countdown(d, radius, height))
        self._burst = lru_cache(maxsize=2)(lambda phase: render_burst(lay.effects.w // 2, height, phase))
        self._scaled = lru_cache(maxsize=64)(self._scale)

    def _scale(self, kind: str, key: int, scale: float) -> Sprite:
        base = self._digit(key) if kind == "digit" else self._burst(key)
        return base if scale == 1.0 else base.scaled(scale)

    def draw(self, frame: np.ndarray, state: OverlayState) -> None:
        """Draw every overlay `state` asks for onto `frame` (HxWx3 uint8 BGR) in place."""
        lay = self.layout
        if frame.shape[:2] != (lay.height, lay.width):
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, renderer is {lay.width}x{lay.height}")
        if state.subtitle:
            blend(frame, self._subtitle(state.subtitle), lay.subtitle.x, lay.subtitle.y, clip=lay.subtitle)
        if state.banner is not None:
            blend(frame, self._banner(state.banner), lay.banner.x, lay.banner.y, clip=lay.banner)
        if state.card is not None or state.stock is not None:
            self._draw_panel(frame, state.card, state.stock, state.card_age if state.card else anim.CARD_IN_FRAMES)
        cx, cy = lay.effects.center
        if state.countdown in (1, 2, 3):
            scale = round(anim.countdown_scale(state.countdown_age), 3)
            blend(frame, self._scaled("digit", state.countdown, scale), cx, cy)
        if anim.burst_visible(state.burst_age):
            age = state.burst_age
            sprite = self._scaled("burst", anim.burst_phase(age), round(anim.burst_scale(age), 3))
            opacity = anim.burst_opacity(age)
            blend(frame, sprite if opacity >= 1.0 else sprite.faded(opacity), cx, cy)
        blend(frame, self._label, lay.label.x, lay.label.y)

    def _draw_panel(self, frame: np.ndarray, card: CardInfo | None, stock: StockInfo | None, age: int) -> None:
        """Card and stock bar, sliding and fading in together while the card is new."""
        lay = self.layout
        remaining, opacity = anim.card_entry(age)
        dx = round(remaining * _SLIDE * lay.width)
        parts = []
        if card is not None:
            parts.append((self._card(card), lay.card))
        if stock is not None:
            parts += [(self._stock_panel, lay.stock), (self._stock(stock), lay.stock)]
        for sprite, box in parts:
            blend(frame, sprite if opacity >= 1.0 else sprite.faded(opacity), box.x + dx, box.y)
