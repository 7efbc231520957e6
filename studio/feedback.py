"""Live flash-sale feedback: stock left and "N 人已抢", throttled per batch.

During a storm every grant changes the stock; telling ten thousand viewers about each one
would be millions of frames a second for a number nobody can read that fast. So updates of
a batch go out at most `per_second` times a second, the last value always goes out (a
trailing update once the interval has passed), and an update that ends the sale (sold out,
closed) goes at once, since it closes everyone's claim button.

`Throttle` is pure (callers pass the time) so any claims backend can drive it; `Feedback`
runs it on an asyncio loop with one timer.
"""
from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

PER_SECOND = 4.0  # updates of one batch per second, at most


class Throttle(Generic[K, V]):
    """Latest value per key, released at most once per `1/per_second` seconds per key.

    A value equal to the last one released is dropped: a burst of grants that all end in
    "sold out" says it once.
    """

    def __init__(self, per_second: float = PER_SECOND) -> None:
        self.gap = 1.0 / per_second
        self._sent_at: dict[K, float] = {}
        self._sent: dict[K, V] = {}
        self._pending: dict[K, V] = {}

    def offer(self, key: K, value: V, now: float, urgent: bool = False) -> V | None:
        """The value to send now, or None when it waits (replacing any older waiting value) or repeats."""
        if key in self._sent and self._sent[key] == value:
            self._pending.pop(key, None)
            return None
        if urgent or now - self._sent_at.get(key, float("-inf")) >= self.gap:
            self._sent_at[key], self._sent[key] = now, value
            self._pending.pop(key, None)
            return value
        self._pending[key] = value
        return None

    def due(self, now: float) -> list[tuple[K, V]]:
        """Waiting values whose interval has passed; they count as sent now."""
        out = []
        for key in [k for k in self._pending if now - self._sent_at[k] >= self.gap - 1e-9]:
            value = self._pending.pop(key)
            out.append((key, value))
            self._sent_at[key], self._sent[key] = now, value
        return out

    def next_due(self) -> float | None:
        """When the earliest waiting value may go, or None when nothing waits."""
        if not self._pending:
            return None
        return min(self._sent_at[k] for k in self._pending) + self.gap


def deal_event(batch: str, state: str, left: int, claimed: int, media_time: float) -> dict[str, Any]:
    """The `deal` event viewers get: the claim button's state, stock left, how many got one."""
    return {"kind": "deal", "batch": batch, "state": state, "left": left, "claimed": claimed,
            "media_time": media_time}


def claim_answer(request_id: str, ok: bool, reason: str | None, coupon: str | None) -> str:
    """The `claim_result` a claimer gets, as JSON text (what `hub.encode` makes of the same dict).

    Answers differ only in their request id during a storm, so everything after it is built
    once per (ok, reason, coupon) and reused.
    """
    quoted = f'"{request_id}"' if _PLAIN.fullmatch(request_id) else json.dumps(request_id, ensure_ascii=False)
    return '{"type":"claim_result","request_id":' + quoted + _answer_tail(ok, reason, coupon)


_PLAIN = re.compile(r"[\w.:~+/=-]*", re.ASCII)  # ids that JSON quotes as they are (most are uuids or counters)


@functools.lru_cache(maxsize=256)
def _answer_tail(ok: bool, reason: str | None, coupon: str | None) -> str:
    tail: dict[str, Any] = {"ok": ok}
    if reason:
        tail["reason"] = reason
    if coupon:
        tail["coupon"] = coupon
    return "," + json.dumps(tail, ensure_ascii=False, separators=(",", ":"))[1:]


class Feedback:
    """Throttled `deal` events on the running loop; `publish(room, message)` sends to a room."""

    def __init__(self, publish: Callable[[str, dict[str, Any]], None], per_second: float = PER_SECOND) -> None:
        self._publish = publish
        self._throttle: Throttle[str, tuple[str, dict[str, Any]]] = Throttle(per_second)
        self._timer: asyncio.TimerHandle | None = None

    def update(self, room: str, event: dict[str, Any]) -> None:
        """Send `event` (a deal event) now, or as the batch's trailing update; final states go at once."""
        loop = asyncio.get_running_loop()
        urgent = event["state"] in ("sold_out", "closed")
        now_value = self._throttle.offer(event["batch"], (room, event), loop.time(), urgent)
        if now_value is not None:
            self._send(*now_value)
        self._arm(loop)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self, room: str, event: dict[str, Any]) -> None:
        self._publish(room, {"type": "event", "event": event})

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        when = self._throttle.next_due()
        if when is None or self._timer is not None:
            return
        self._timer = loop.call_at(when, self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        for _, (room, event) in self._throttle.due(loop.time()):
            self._send(room, event)
        self._arm(loop)
