"""Flash-sale coupon batches and who got one.

Pure logic, free of I/O (sans-I/O, like the `websockets` protocol core): the
server feeds it link-up events and claims and sends back what it decides; the
claims store makes those decisions durable and rebuilds them after a restart.

Which answers are final: every answer is remembered by request id and repeated
verbatim for a retry, except `not_open`. A claim that arrives before the
link-up (or whose media time is still before the link-up's) changes nothing,
so a retry with the same request id is judged afresh and may succeed once the
batch is open.

Precedence of refusals: unknown_batch, closed, not_open, limit_reached,
sold_out. `closed` goes before `not_open` because it is final: a viewer
whose player is behind is told to stop retrying. `limit_reached` goes before
`sold_out` because it is the more useful thing to tell a viewer who already
holds the coupon.

When a batch ends: when sold out, or at its end time. The end time is the
media time of the frame that hides its product's card (the segment is over),
plus a grace period for viewers' players, which run a few seconds behind the
server's media clock: a viewer who clicked while the card was still on their
screen is not told `closed`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, NamedTuple

Reason = Literal["not_open", "sold_out", "limit_reached", "closed", "unknown_batch"]
State = Literal["waiting", "open", "sold_out", "closed"]
CLOSE_GRACE = 10.0  # media seconds between the card leaving the video and `closed`


@dataclass(frozen=True)
class Batch:
    batch: str
    stream_id: str
    product_id: str
    stock: int
    per_viewer_limit: int
    coupon: str  # the label shown to the viewer, e.g. "满199减20"


class ClaimRequest(NamedTuple):
    """Claims and answers are named tuples: immutable like a frozen dataclass at half its cost to
    build, and a storm builds one of each per click."""

    request_id: str  # client-chosen, unique per attempt; a retry reuses it
    viewer_id: str
    stream_id: str
    batch: str
    media_time: float  # the claimer's stream media time when the server received it


class ClaimResult(NamedTuple):
    request_id: str
    ok: bool
    reason: Reason | None = None
    coupon: str | None = None
    left: int = 0  # stock left right after this decision


@dataclass
class _BatchState:
    open_at: float | None = None
    closed: bool = False
    closes_at: float | None = None  # the end time (media seconds), once known
    by_viewer: dict[str, int] = field(default_factory=dict)
    granted: int = 0


class Deals:
    """Batches, their open/close state and claims: decides every claim; the store makes decisions durable."""

    def __init__(self) -> None:
        self._batches: dict[str, Batch] = {}
        self._states: dict[str, _BatchState] = {}
        # answers are kept as plain tuples of str/bool/int/None, which the garbage collector stops
        # tracking: a named tuple stays tracked, and a storm's hundreds of thousands of them made
        # every full collection walk them all (70 ms pauses in bench/claims.py)
        self._answers: dict[str, tuple[str, bool, Reason | None, str | None, int]] = {}

    @property
    def batches(self) -> Mapping[str, Batch]:
        return MappingProxyType(self._batches)

    def add_batch(self, b: Batch) -> None:
        """Adding the same batch twice is a no-op, so start-up and scheduling may both add it."""
        if b.stock < 0 or b.per_viewer_limit < 1:
            raise ValueError(f"batch {b.batch}: stock must be >= 0 and per_viewer_limit >= 1")
        known = self._batches.get(b.batch)
        if known is not None:
            if known != b:
                raise ValueError(f"batch {b.batch} already exists with other terms")
            return
        self._batches[b.batch] = b
        self._states[b.batch] = _BatchState()

    def open(self, batch: str, media_time: float) -> None:
        """Claims at or after `media_time` (the link-up event's) are accepted.

        A second link-up keeps the first time: moving it would turn accepted
        claims into ones that came too early.
        """
        state = self._states[batch]
        if state.closed:
            raise ValueError(f"batch {batch} is closed")
        if state.open_at is None:
            state.open_at = media_time

    def close(self, batch: str) -> None:
        self._states[batch].closed = True

    def end_at(self, batch: str, media_time: float) -> None:
        """Claims from `media_time` on are refused as closed (the first end time stays)."""
        state = self._states[batch]
        if state.closes_at is None:
            state.closes_at = media_time

    def cue(self, stream_id: str, kind: str, product_id: str, media_time: float) -> list[str]:
        """Apply a show event to the stream's batches of that product; the batches it opened or ended.

        `link_up` opens a batch that has not ended (a looping show's second link-up leaves an
        ended batch ended); `hide_card` ends an open batch after CLOSE_GRACE.
        """
        touched = []
        for b in self._batches.values():
            if b.stream_id != stream_id or b.product_id != product_id:
                continue
            state = self._states[b.batch]
            ended = state.closed or state.closes_at is not None
            if kind == "link_up" and not ended:
                self.open(b.batch, media_time)
                touched.append(b.batch)
            elif kind == "hide_card" and state.open_at is not None and not ended:
                self.end_at(b.batch, media_time + CLOSE_GRACE)
                touched.append(b.batch)
        return touched

    def open_at(self, batch: str) -> float | None:
        return self._states[batch].open_at

    def state(self, batch: str, media_time: float) -> State:
        """What the claim button should say at `media_time`: closed from the card leaving the video on
        (claims are still taken for CLOSE_GRACE after, for players behind, but the button never reopens)."""
        s = self._states[batch]
        if s.closed or (s.closes_at is not None and media_time >= s.closes_at - CLOSE_GRACE):
            return "closed"
        if s.granted >= self._batches[batch].stock:
            return "sold_out"
        return "waiting" if s.open_at is None else "open"

    def answered(self, request_id: str) -> ClaimResult | None:
        """The final answer already given to `request_id`, if any (a retry gets it again)."""
        known = self._answers.get(request_id)
        return None if known is None else ClaimResult._make(known)

    def decide(self, req: ClaimRequest) -> ClaimResult:
        known = self._answers.get(req.request_id)
        if known is not None:
            return ClaimResult._make(known)
        result = self._judge(req)
        if result.reason != "not_open":
            self._answers[req.request_id] = tuple(result)  # type: ignore[assignment]
        return result

    def left(self, batch: str) -> int:
        return self._batches[batch].stock - self._states[batch].granted

    def granted(self, batch: str) -> int:
        return self._states[batch].granted

    def restore(self, batch: str, granted_by_viewer: dict[str, int], answered: dict[str, ClaimResult]) -> None:
        """Rebuild a batch's claims from the store at start-up.

        A batch that does not exist (claims that got unknown_batch) may still
        be restored with no grants, so those answers stay final too.
        """
        if batch in self._batches:
            b = self._batches[batch]
            total = sum(granted_by_viewer.values())
            if total > b.stock or any(n > b.per_viewer_limit for n in granted_by_viewer.values()):
                raise ValueError(f"batch {batch}: stored grants exceed its stock or per-viewer limit")
            state = self._states[batch]
            state.by_viewer = dict(granted_by_viewer)
            state.granted = total
        elif granted_by_viewer:
            raise ValueError(f"grants stored for unknown batch {batch}")
        self._answers.update((rid, tuple(result)) for rid, result in answered.items())  # type: ignore[misc]

    def _judge(self, req: ClaimRequest) -> ClaimResult:
        b = self._batches.get(req.batch)
        if b is None or b.stream_id != req.stream_id:
            return ClaimResult(req.request_id, False, "unknown_batch")
        state = self._states[req.batch]
        left = b.stock - state.granted
        if state.closed or (state.closes_at is not None and req.media_time >= state.closes_at):
            return ClaimResult(req.request_id, False, "closed", left=left)
        if state.open_at is None or req.media_time < state.open_at:
            return ClaimResult(req.request_id, False, "not_open", left=left)
        held = state.by_viewer.get(req.viewer_id, 0)
        if held >= b.per_viewer_limit:
            return ClaimResult(req.request_id, False, "limit_reached", left=left)
        if left <= 0:
            return ClaimResult(req.request_id, False, "sold_out", left=0)
        state.by_viewer[req.viewer_id] = held + 1
        state.granted += 1
        return ClaimResult(req.request_id, True, coupon=b.coupon, left=left - 1)
