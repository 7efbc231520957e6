"""Where claims are decided and where room messages go: embedded (one process) or Redis (several).

The server talks to two small interfaces and never to a particular store:

- `ClaimsBackend`: registers batches, opens and closes them, answers claims once they are durable,
  and offers a read view (`deals`) of batches, stock left and open times for pages and the host.
- `RoomBus`: room-wide messages (comments, likes, show events, deal updates, toasts). Embedded, it is the
  local Hub; on Redis it also reaches the viewers of every other process.

`build_backends(config)` picks one pair; the embedded one (SQLite, this process) stays the default and
needs no Redis (redis-py is only imported when a Redis URL is configured).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from studio.claims_store import Answered, ClaimsStore, StoreFailed, awaited, submit_claim
from studio.deals import Batch, ClaimRequest, ClaimResult, Deals, State
from studio.hub import Hub

if TYPE_CHECKING:
    from studio.cluster import Cluster
    from studio.server import Config

EVENTS_KEPT = 200  # show events replayed to a viewer who joins late: the recent ones are what matter


class BackendError(RuntimeError):
    """The configured backend cannot be used (Redis unreachable, say): one line for the operator."""


class DealsView(Protocol):
    """What pages and the host read about batches (studio.deals.Deals satisfies it)."""

    @property
    def batches(self) -> Mapping[str, Batch]: ...

    def left(self, batch: str) -> int: ...

    def granted(self, batch: str) -> int: ...

    def open_at(self, batch: str) -> float | None: ...

    def state(self, batch: str, media_time: float) -> State:
        """What the claim button says at `media_time`: waiting, open, sold_out or closed."""


class ClaimsBackend(Protocol):
    deals: DealsView
    store: ClaimsStore  # the SQLite claims table: written per claim (embedded) or by the order consumer (Redis)

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def add_batch(self, batch: Batch) -> None:
        """Register a stream's batch; a batch id already known keeps its first terms and its claims."""

    def cue(self, stream_id: str, kind: str, product_id: str, media_time: float) -> list[str]:
        """A show event's effect on the stream's batches (link_up opens, hide_card ends): the batches it touched."""

    async def claim(self, req: ClaimRequest) -> ClaimResult:
        """The answer, given only once it is durable (`not_open` binds nothing and comes at once).

        ClaimsUnavailable when it cannot be decided or made durable now.
        """

    def submit(self, req: ClaimRequest, answered: Answered) -> None:
        """`claim` without awaiting: `answered` gets the durable answer or ClaimsUnavailable, on the loop.

        The storm's path: a viewer socket goes back to reading at once, and no task waits per claim.
        """


class RoomBus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def publish(self, room: str, message: dict[str, Any], history: bool = False) -> None:
        """To every viewer of `room`; `history`: a show event late joiners get in their `hello`."""

    def comment(self, room: str, item: dict[str, Any]) -> None: ...

    def like(self, room: str, count: int) -> None: ...


class EmbeddedClaims:
    """Deals decides on the loop, ClaimsStore makes it durable (group commit): one process."""

    def __init__(self, deals: Deals, store: ClaimsStore) -> None:
        self.deals = deals
        self.store = store

    async def start(self) -> None:
        await self.store.start()
        self.store.load(self.deals)

    async def close(self) -> None:
        await self.store.close()

    async def add_batch(self, batch: Batch) -> None:
        if batch.batch in self.deals.batches:
            return  # a restarted stream keeps its batch and claims
        self.deals.add_batch(batch)
        await self.store.save_batch(batch)

    def cue(self, stream_id: str, kind: str, product_id: str, media_time: float) -> list[str]:
        return self.deals.cue(stream_id, kind, product_id, media_time)

    async def claim(self, req: ClaimRequest) -> ClaimResult:
        return await awaited(self.submit, req)

    def submit(self, req: ClaimRequest, answered: Answered) -> None:
        try:
            submit_claim(self.deals, self.store, req, answered)  # a failed write answers StoreFailed, a ClaimsUnavailable
        except StoreFailed as exc:
            answered(exc)


class LocalBus:
    """Rooms live in this process only: straight to the Hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def publish(self, room: str, message: dict[str, Any], history: bool = False) -> None:
        self.hub.publish(room, message)

    def comment(self, room: str, item: dict[str, Any]) -> None:
        self.hub.comment(room, item)

    def like(self, room: str, count: int) -> None:
        self.hub.like(room, count)


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def check_redis_url(url: str) -> str:
    """A Redis URL as redis-py takes it; BackendError naming the option otherwise (no connection is tried)."""
    if not url.startswith(REDIS_SCHEMES):
        raise BackendError(f"--redis: expected redis://host:port/db, rediss://… or unix://path, got {url!r}")
    return url


def node_name(port: int) -> str:
    """This process's name among the Redis consumers: host and port, stable across restarts (0: a random one)."""
    import secrets
    import socket

    return f"{socket.gethostname()}-{port if port else secrets.token_hex(3)}"


@dataclass
class Backends:
    hub: Hub
    claims: ClaimsBackend
    bus: RoomBus
    cluster: Cluster | None  # streams shared with other processes (Redis only)


def build_backends(config: Config) -> Backends:
    """Embedded unless `config.redis_url` is set."""
    if config.redis_url:
        from studio.cluster import (
            redis_backends,  # imports redis-py only when it is used
        )

        return redis_backends(config)
    hub = Hub()
    return Backends(hub, EmbeddedClaims(Deals(), ClaimsStore(config.data_dir / "claims.sqlite3")), LocalBus(hub), None)
