"""When scheduled streams go on air, and the toasts a busy flash sale throws up. Pure: no I/O, no clock."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    stream_id: str
    starts_at: float | None  # epoch seconds; None: only by hand
    status: str  # "scheduled" | "live" | "ended"


def due(slots: Iterable[Slot], now: float) -> list[str]:
    """Streams whose start time has come and that are still waiting to go live."""
    return [s.stream_id for s in slots if s.status == "scheduled" and s.starts_at is not None and s.starts_at <= now]


def mask_nickname(nickname: str) -> str:
    """张三丰 -> 张**: toasts show that someone won, not who."""
    return (nickname[:1] or "*") + "**"


class ToastThrottle:
    """At most `per_second` claim toasts per stream: ten thousand winners must not flood every screen."""

    def __init__(self, per_second: float = 2.0) -> None:
        self.gap = 1.0 / per_second
        self._last: dict[str, float] = {}

    def allow(self, stream_id: str, now: float) -> bool:
        if now - self._last.get(stream_id, float("-inf")) < self.gap:
            return False
        self._last[stream_id] = now
        return True
