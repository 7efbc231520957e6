"""What the overlays show on one frame: plain data, computed by the show timeline."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CardInfo:
    product_id: str
    name: str
    price: str  # original price as shown, e.g. "399" (struck through)
    live_price: str  # live price as shown, e.g. "199" (large)
    coupon: str | None = None  # coupon tag text, e.g. "满199减20"
    link_no: int = 1  # the product's link number in the rundown ("1号链接")


@dataclass(frozen=True)
class StockInfo:
    left: int
    total: int


@dataclass(frozen=True)
class BannerInfo:
    who: str  # the askers, "@小王、@小李"
    text: str  # the host's answer


@dataclass(frozen=True)
class OverlayState:
    card: CardInfo | None = None
    card_age: int = 0  # frames since the card appeared (for the slide-in)
    stock: StockInfo | None = None
    countdown: int | None = None  # 3, 2 or 1 while the countdown runs
    countdown_age: int = 0  # frames since this digit appeared
    burst_age: int | None = None  # frames since "上链接！" fired; None when not showing
    subtitle: str | None = None
    banner: BannerInfo | None = None  # the answer the host is giving, with who asked
