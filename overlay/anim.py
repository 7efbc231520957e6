"""Animation curves for the overlays, as pure functions of a frame age (25 fps)."""
from __future__ import annotations

CARD_IN_FRAMES = 8  # card slides and fades in over this many frames
COUNTDOWN_POP_FRAMES = 5  # digit shrinks 1.3x -> 1.0x
COUNTDOWN_POP_FROM = 1.3
BURST_FRAMES = 50  # "上链接！" stays 2 s
BURST_POP_FRAMES = 6
BURST_FADE_FRAMES = 10
BURST_SPARKLE_PERIOD = 4  # frames between the two starburst phases


def _clamp01(t: float) -> float:
    return min(max(t, 0.0), 1.0)


def ease_out_cubic(t: float) -> float:
    t = _clamp01(t)
    return 1.0 - (1.0 - t) ** 3


def ease_out_back(t: float, overshoot: float = 1.7) -> float:
    """Overshoots past 1 and settles: a "pop"."""
    t = _clamp01(t) - 1.0
    return 1.0 + t * t * ((overshoot + 1.0) * t + overshoot)


def card_entry(age: int) -> tuple[float, float]:
    """(share of the slide distance still to travel, opacity) for a card `age` frames old."""
    e = ease_out_cubic((age + 1) / CARD_IN_FRAMES)
    return 1.0 - e, e


def countdown_scale(age: int) -> float:
    e = ease_out_cubic(age / COUNTDOWN_POP_FRAMES)
    return COUNTDOWN_POP_FROM + (1.0 - COUNTDOWN_POP_FROM) * e


def burst_visible(age: int | None) -> bool:
    return age is not None and 0 <= age < BURST_FRAMES


def burst_scale(age: int) -> float:
    return 0.5 + 0.5 * ease_out_back(age / BURST_POP_FRAMES)


def burst_opacity(age: int) -> float:
    return _clamp01((BURST_FRAMES - age) / BURST_FADE_FRAMES)


def burst_phase(age: int) -> int:
    """Which of the two starburst variants shows (alternating makes it sparkle)."""
    return (age // BURST_SPARKLE_PERIOD) % 2
