"""Where every overlay element sits, for a given frame size.

Pure geometry so the "never cover the host's face" rule can be checked
without drawing anything. Sizes follow the frame height, horizontal placement
the frame width.
"""
from __future__ import annotations

from dataclasses import dataclass

# The host's face lives here (fractions of W and H); overlays stay out of it.
FACE_BOX = (0.22, 0.08, 0.52, 0.55)  # x0, y0, x1, y1


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    @property
    def center(self) -> tuple[int, int]:
        return self.x + self.w // 2, self.y + self.h // 2

    def intersects(self, other: Rect) -> bool:
        return (self.x < other.right and other.x < self.right
                and self.y < other.bottom and other.y < self.bottom)

    def inside(self, width: int, height: int) -> bool:
        return self.x >= 0 and self.y >= 0 and self.right <= width and self.bottom <= height


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    face: Rect  # keep-out zone
    label: Rect  # "AI 数字人主播" pill, top-left
    card: Rect  # product card, right panel
    stock: Rect  # stock bar, under the card
    effects: Rect  # countdown / "上链接！" burst, centred on the card
    subtitle: Rect  # subtitle band
    banner: Rect  # "@昵称" + answer, under the face, left of the card


def _frac_rect(width: int, height: int, x0: float, y0: float, x1: float, y1: float) -> Rect:
    x, y = round(x0 * width), round(y0 * height)
    return Rect(x, y, round(x1 * width) - x, round(y1 * height) - y)


def make_layout(width: int, height: int) -> Layout:
    face = _frac_rect(width, height, *FACE_BOX)
    label = Rect(round(0.025 * height), round(0.028 * height),
                 min(round(0.19 * width), face.x - round(0.025 * height)), round(0.048 * height))
    card = _frac_rect(width, height, 0.69, 0.14, 0.97, 0.61)
    stock = Rect(card.x, round(0.625 * height), card.w, round(0.08 * height))
    cx, cy = card.center
    half = min(width - cx, cx - face.right) - round(0.01 * width)
    half_h = min(half, cy, height - cy)
    effects = Rect(cx - half, cy - half_h, 2 * half, 2 * half_h)
    subtitle = _frac_rect(width, height, 0.05, 0.84, 0.95, 0.96)
    banner = Rect(label.x, round(0.60 * height), min(round(0.64 * width), effects.x) - label.x, round(0.22 * height))
    return Layout(width, height, face, label, card, stock, effects, subtitle, banner)
