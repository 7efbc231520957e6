"""Streams shared by several `linkup serve` processes (Redis mode).

A stream's *origin* is the process that created it: it runs the show, writes the HLS into the shared
data folder, and every half second writes the stream's state (status, media clock, playing product)
to Redis. Every other process *mirrors* the stream: it serves its watch page, HLS files (from the
shared folder), viewer sockets and claims, and forwards buyer commands (link-up, say, end, …) and
granted stock to the origin over the room bus. A mirror's media clock is the origin's last reported
media time advanced by the wall clock since, never behind an event it has already seen, so a claim
made on any process is judged against the same link-up time.

Stream definitions (the parsed rundown) travel pickled and signed with the tokens' HMAC key: every
process serving the same data folder shares that key, and nothing unsigned is ever unpickled.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import pickle
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from studio.backend import BackendError, Backends, check_redis_url, node_name
from studio.claims_store import ClaimsStore
from studio.deals import Batch
from studio.hls import published_segments
from studio.redis_bus import ClusterHub, Outbox, RedisBus, events_key, stop_task
from studio.redis_store import RedisClaims

if TYPE_CHECKING:
    from studio.server import Config, Stream, Studio

log = logging.getLogger(__name__)

STREAMS = "linkup:streams"  # stream id -> signed pickled definition
ORIGINS = "linkup:origins"  # stream id -> the node that runs its show
POLL = 0.5  # seconds between state writes / mirror refreshes
COUNTS_EVERY = 2  # polls between viewer-count exchanges (about once a second)
FORWARD_GAP = 5.0  # seconds between two forwarded go_live of one stream (the scheduler asks every 0.5 s)


def state_key(stream_id: str) -> str:
    return f"linkup:stream:{stream_id}"


def seal(secret: bytes, value: Any) -> bytes:
    blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return hmac.new(secret, blob, hashlib.sha256).digest() + blob


def unseal(secret: bytes, data: bytes) -> Any:
    """Raises ValueError for anything not signed with `secret` (another data folder's key, or forged)."""
    mac, blob = data[:32], data[32:]
    if not hmac.compare_digest(mac, hmac.new(secret, blob, hashlib.sha256).digest()):
        raise ValueError("stream definition not signed with this data folder's key")
    return pickle.loads(blob)


class RemoteShow:
    """A show running on another process, as the server sees it: clock, status, and forwarded commands."""

    def __init__(self, cluster: Cluster, stream_id: str, origin: str, playlist: Path) -> None:
        self._cluster = cluster
        self.stream_id = stream_id
        self.origin = origin
        self.playlist = playlist
        self.status = "live"
        self.failovers: deque[dict] = deque(maxlen=50)
        self.recording: Path | None = None
        self.rtmp_status = "off"
        self.media_epoch: float | None = None
        self.current_product = ""
        self._clock = (0.0, time.time())  # (origin's media time, wall time it was read)
        self._floor = 0.0  # the latest event media time seen: the clock never shows less

    def update(self, state: dict[str, str]) -> None:
        self.status = state.get("status", self.status)
        self._clock = (float(state.get("media_time", 0.0)), float(state.get("at", time.time())))
        self.media_epoch = float(state["media_epoch"]) if state.get("media_epoch") else None
        self.current_product = state.get("current_product", self.current_product)
        self.rtmp_status = state.get("rtmp_status", self.rtmp_status)

    def saw(self, media_time: float) -> None:
        self._floor = max(self._floor, media_time)

    @property
    def media_time(self) -> float:
        media, at = self._clock
        running = media + max(0.0, time.time() - at) if self.status in ("live", "paused") else media
        return max(self._floor, running)

    def set_stock(self, product_id: str, left: int) -> None:
        self._cluster.forward(self, "stock", product_id=product_id, left=left)

    async def command(self, action: str, product_id: str | None = None, text: str | None = None) -> None:
        self._cluster.forward(self, action, product_id=product_id, text=text)

    async def set_rtmp(self, url: str | None) -> None:
        raise RuntimeError(f"RTMP outputs are set on the process running the show ({self.origin})")

    async def wait_first_segment(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while published_segments(self.playlist) == 0:
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        return None  # the show belongs to its origin


class Cluster:
    """Publishes this process's streams and mirrors the others'; runs commands forwarded to its shows."""

    def __init__(self, redis: Redis, bus: RedisBus, claims: RedisClaims, node: str) -> None:
        self.redis = redis
        self.bus = bus
        self.claims = claims
        self.node = node
        self._studio: Studio | None = None
        self._remote: dict[str, RemoteShow | None] = {}  # mirrored stream id -> its show once live
        self._origins: dict[str, str] = {}  # mirrored stream id -> origin node
        self._forwarded: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    @property
    def studio(self) -> Studio:
        assert self._studio is not None, "Cluster.start first"
        return self._studio

    async def start(self, studio: Studio) -> None:
        self._studio = studio
        self.bus.on_op = self._on_op
        stale = [sid for sid, origin in (await self.redis.hgetall(ORIGINS)).items() if origin == self.node]
        if stale:  # our previous run's streams: their shows died with it, like an embedded restart (batches stay)
            await self.redis.hdel(STREAMS, *stale)
            await self.redis.hdel(ORIGINS, *stale)
            await self.redis.delete(*map(state_key, stale), *map(events_key, stale))
        await self._sync()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        for task in [*([self._task] if self._task else []), *self._jobs]:
            await stop_task(task)
        self._task = None

    def is_remote(self, stream_id: str) -> bool:
        return stream_id in self._remote

    async def announce(self, stream: Stream, batches: list[Batch]) -> None:
        """Make a stream this process created known to every process.

        ValueError when another process runs a stream with this id, or one of the batch ids belongs
        to another stream (checked against Redis, not this process's half-second-old view).
        """
        await self.claims.refresh()
        for batch in batches:
            known = self.claims.deals.batches.get(batch.batch)
            if known is not None and known.stream_id != stream.id:
                raise ValueError(f"flash_sale.batch {batch.batch!r} belongs to stream {known.stream_id!r}: use a new batch id")
        definition = {"id": stream.id, "title": stream.title, "rundown": stream.rundown, "starts_at": stream.starts_at,
                      "brand_id": stream.brand_id, "origin": self.node}
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(ORIGINS, stream.id, self.node)
        pipe.hget(ORIGINS, stream.id)
        _, origin = await pipe.execute()
        if origin != self.node:
            raise ValueError(f"stream {stream.id!r} is run by another process ({origin})")
        await self.redis.hset(STREAMS, stream.id, seal(self.studio.tokens.secret, definition).hex())
        await self._write_state(stream)

    def forward_go_live(self, stream: Stream) -> bool:
        """True when the stream's show runs elsewhere (go_live is then forwarded, at most every few seconds)."""
        if not self.is_remote(stream.id):
            return False
        now = time.monotonic()
        if now - self._forwarded.get(stream.id, float("-inf")) >= FORWARD_GAP:
            self._forwarded[stream.id] = now
            self.bus.send_op({"op": "show", "to": self._origins[stream.id], "stream": stream.id, "action": "go_live"})
        return True

    def forward(self, show: RemoteShow, action: str, **args: Any) -> None:
        self.bus.send_op({"op": "show", "to": show.origin, "stream": show.stream_id, "action": action, **args})

    # ------------------------------------------------------------------ loop

    async def _loop(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(POLL)
            n += 1
            try:
                await self._sync()
                if n % COUNTS_EVERY == 0:
                    rooms = [s.id for s in self.studio.streams.values() if not s.ended]
                    await self.bus.share_counts(rooms)
            except RedisError as exc:
                log.warning("cluster: redis unavailable (%s)", exc)
            except Exception:  # one bad stream must not stop the others' sync
                log.exception("cluster: sync failed")

    async def _sync(self) -> None:
        studio = self.studio
        for stream in list(studio.streams.values()):
            if not self.is_remote(stream.id):
                await self._write_state(stream)
        await self.claims.refresh()  # batches first: a mirrored stream's claims need them
        ids = await self.redis.hkeys(STREAMS)
        for stream_id in ids:
            if stream_id not in studio.streams:
                await self._mirror(stream_id)
        mirrored = [sid for sid in self._remote if not studio.streams[sid].ended]
        if not mirrored:
            return
        pipe = self.redis.pipeline(transaction=False)
        for sid in mirrored:
            pipe.hgetall(state_key(sid))
        for sid, state in zip(mirrored, await pipe.execute()):
            self._apply_state(studio.streams[sid], state)

    async def _write_state(self, stream: Stream) -> None:
        show = stream.show
        state: dict[str, str] = {"status": stream.status, "origin": self.node}
        if show is not None:
            state.update(media_time=repr(show.media_time), at=repr(time.time()),
                         media_epoch=repr(show.media_epoch) if show.media_epoch else "",
                         current_product=show.current_product, rtmp_status=show.rtmp_status)
        await self.redis.hset(state_key(stream.id), mapping=state)

    async def _mirror(self, stream_id: str) -> None:
        from studio.server import Stream  # the server builds on this module

        raw = await self.redis.hget(STREAMS, stream_id)
        if raw is None:
            return
        try:
            d = unseal(self.studio.tokens.secret, bytes.fromhex(raw))
        except ValueError as exc:
            log.error("cluster: stream %s: %s; not served here", stream_id, exc)
            return
        stream = Stream(d["id"], d["title"], d["rundown"], d["starts_at"], brand_id=d["brand_id"])
        stream.events = [json.loads(e) for e in await self.redis.lrange(events_key(stream_id), 0, -1)]
        self._remote[stream_id] = None
        self._origins[stream_id] = d["origin"]
        self.studio.streams[stream_id] = stream
        self._apply_state(stream, await self.redis.hgetall(state_key(stream_id)))

    def _apply_state(self, stream: Stream, state: dict[str, str]) -> None:
        if state.get("origin"):  # a restarted origin may come back under another name
            self._origins[stream.id] = state["origin"]
            if (show := self._remote.get(stream.id)) is not None:
                show.origin = state["origin"]
        status = state.get("status")
        if status in ("live", "paused"):
            self._show_of(stream).update(state)
        elif status == "ended":
            stream.ended = True
            if stream.show is not None:
                self._show_of(stream).status = "ended"

    def _show_of(self, stream: Stream) -> RemoteShow:
        show = self._remote.get(stream.id)
        if show is None:
            playlist = self.studio.config.data_dir / "hls" / stream.id / "index.m3u8"
            show = self._remote[stream.id] = RemoteShow(self, stream.id, self._origins[stream.id], playlist)
            stream.show = show  # type: ignore[assignment]  # duck-typed LiveShow
        return show

    # ------------------------------------------------------------------ what other processes send

    def _on_op(self, op: dict[str, Any]) -> None:
        kind = op.get("op")
        if kind == "show":
            if op.get("to") == self.node:
                self._job(self._run_command(op))
            return
        stream = self.studio.streams.get(op.get("room", ""))
        if kind != "publish" or stream is None:
            return
        message = op["message"]
        if message.get("type") == "status" and self.is_remote(stream.id):
            if message["status"] == "ended":
                stream.ended = True
            elif message["status"] == "live":
                self._show_of(stream)
        elif message.get("type") == "event":
            event = message["event"]
            if op.get("history") and self.is_remote(stream.id):
                if event not in stream.events[-20:]:  # it may have arrived with the history already
                    stream.events.append(event)
                self._show_of(stream).saw(float(event.get("media_time") or 0.0))
            if event.get("kind") == "link_up":
                for batch in event.get("batches", []):
                    if batch in self.claims.deals.batches:
                        self.claims.deals.opened(batch, float(event["media_time"]))
            elif event.get("kind") == "deal" and event.get("batch") in self.claims.deals.batches:
                self.claims.deals.saw(event["batch"], int(event["left"]))

    def _job(self, job: Any) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _run_command(self, op: dict[str, Any]) -> None:
        """A buyer's command or a granted claim's stock, sent by a mirror to the show's process."""
        studio = self.studio
        stream = studio.streams.get(op["stream"])
        if stream is None or self.is_remote(stream.id) or stream.ended:
            return
        action = op["action"]
        try:
            if action == "go_live":
                await studio.go_live(stream)
            elif stream.show is None:
                log.warning("cluster: %s for stream %s, which is not live", action, stream.id)
            elif action == "stock":  # the lowest stock known here: reports from several processes cross
                product, deals = op["product_id"], self.claims.deals
                batches = [b.batch for b in deals.batches.values() if b.stream_id == stream.id and b.product_id == product]
                for batch in batches:
                    deals.saw(batch, int(op["left"]))
                if batches:
                    stream.show.set_stock(product, min(deals.left(b) for b in batches))
            else:
                await stream.show.command(action, product_id=op.get("product_id"), text=op.get("text"))
                if action == "end":
                    stream.ended = True  # the mirror that took the command told the viewers
        except (ValueError, RuntimeError) as exc:
            log.warning("cluster: forwarded %s on stream %s failed: %s", action, stream.id, exc)


def redis_backends(config: Config) -> Backends:
    """Claims decided in Redis, rooms shared over pub/sub, streams mirrored: the scale-out."""
    assert config.redis_url
    try:
        redis = Redis.from_url(check_redis_url(config.redis_url), decode_responses=True)
    except ValueError as exc:
        raise BackendError(f"--redis {config.redis_url}: {exc}") from None
    node = config.node or node_name(0)
    hub = ClusterHub()
    outbox = Outbox(redis, node)
    bus = RedisBus(redis, hub, outbox, node)
    claims = RedisClaims(redis, outbox, ClaimsStore(config.data_dir / "claims.sqlite3", unique_requests=True), node, config.redis_idle_timeout)
    return Backends(hub, claims, bus, Cluster(redis, bus, claims, node))
