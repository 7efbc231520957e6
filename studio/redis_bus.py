"""Rooms shared by several `linkup serve` processes over Redis pub/sub.

Each process delivers a room message to its own viewers at once, through its local Hub, and publishes
it for the others; a process skips what it published itself, so nobody gets a message twice. What a
process has to say is queued in one ordered `Outbox` and sent as one pipeline per loop turn (many
room messages become one PUBLISH), so a batch opening written to Redis is always there before the
link-up event that announces it reaches another process.

Viewer counts are summed across processes: each process writes its rooms' counts into a Redis hash
per room with an expiry stamp, so a dead process's viewers drop out of the total within seconds.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from studio.backend import EVENTS_KEPT
from studio.hub import Hub

log = logging.getLogger(__name__)

ROOMS = "linkup:rooms"  # the one pub/sub channel: every process subscribes to every room
SEND_RETRIES = 20  # ~10 s of a Redis outage before queued messages are dropped
COUNT_TTL = 5.0  # seconds a process's viewer count stays in the sum without a refresh


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel and wait; again if needed: redis-py may turn a cancellation mid-command into a connection error."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)


def events_key(room: str) -> str:
    """A stream's show events so far (a list of JSON), for late joiners on any process."""
    return f"linkup:events:{room}"


def _viewers_key(room: str) -> str:
    return f"linkup:viewers:{room}"


class Outbox:
    """Everything this process sends to Redis outside claims, in order, one pipeline per flush.

    Room operations queued back to back travel as one PUBLISH of a JSON list; a command (a batch
    opening or ending, a show event kept for late joiners) keeps its place between them.
    """

    def __init__(self, redis: Redis, node: str) -> None:
        self._redis = redis
        self._node = node
        self._items: list[dict[str, Any] | tuple[str, tuple[Any, ...]]] = []
        self._queued = 0  # items ever queued
        self._done = 0  # items ever sent (or given up on)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def room(self, op: dict[str, Any]) -> None:
        self._queue(op)

    def command(self, name: str, *args: Any) -> None:
        """A Redis command (`hsetnx`, `rpush`, …) sent in its place among the room operations."""
        self._queue((name, args))

    def _queue(self, item: dict[str, Any] | tuple[str, tuple[Any, ...]]) -> None:
        self._items.append(item)
        self._queued += 1
        self._wake.set()

    async def flush(self) -> None:
        """Return once everything queued before the call has been sent."""
        target = self._queued
        while self._done < target:
            await asyncio.sleep(0.001)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Send what is queued (one try), then stop."""
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        items = self._take()
        if items:
            try:
                await self._send(items)
            except RedisError:
                log.warning("redis: %d queued messages not sent at shutdown", len(items))
            self._done += len(items)

    def _take(self) -> list[dict[str, Any] | tuple[str, tuple[Any, ...]]]:
        items, self._items = self._items, []
        return items

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            items = self._take()
            for attempt in range(SEND_RETRIES):
                try:
                    await self._send(items)
                    break
                except RedisError as exc:
                    log.warning("redis: sending %d messages failed (%s), retrying", len(items), exc)
                    await asyncio.sleep(0.5)
            else:
                log.error("redis: dropped %d room messages after %d tries", len(items), SEND_RETRIES)
            self._done += len(items)

    async def _send(self, items: list[dict[str, Any] | tuple[str, tuple[Any, ...]]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        ops: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, dict):
                ops.append(item)
                continue
            if ops:
                pipe.publish(ROOMS, self._packet(ops))
                ops = []
            name, args = item
            getattr(pipe, name)(*args)
        if ops:
            pipe.publish(ROOMS, self._packet(ops))
        await pipe.execute()

    def _packet(self, ops: list[dict[str, Any]]) -> str:
        return json.dumps({"from": self._node, "ops": ops}, ensure_ascii=False, separators=(",", ":"))


class ClusterHub(Hub):
    """A Hub whose viewer counts include the other processes' viewers of the same room."""

    def __init__(self, batch_interval: float = 0.1) -> None:
        super().__init__(batch_interval)
        self.elsewhere: dict[str, int] = {}  # room -> viewers on other processes (refreshed by RedisBus)

    def local_count(self, room: str) -> int:
        return super().count(room)

    def count(self, room: str) -> int:
        return super().count(room) + self.elsewhere.get(room, 0)

    def publish(self, room: str, message: dict) -> None:
        if message.get("type") == "viewers":  # the Hub's ticker counts its own sockets only
            message = {**message, "count": self.count(room)}
        super().publish(room, message)



class RedisBus:
    """Room messages for every process's viewers; `on_op` sees what other processes sent first."""

    def __init__(self, redis: Redis, hub: ClusterHub, outbox: Outbox, node: str) -> None:
        self.redis = redis
        self.hub = hub
        self.outbox = outbox
        self.node = node
        self.on_op: Callable[[dict[str, Any]], None] | None = None  # the cluster's hook (mirrors, commands)
        self._listener: asyncio.Task[None] | None = None
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)

    async def start(self) -> None:
        await self.outbox.start()
        await self._pubsub.subscribe(ROOMS)
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def close(self) -> None:
        if self._listener is not None:
            await stop_task(self._listener)
            self._listener = None
        await self._pubsub.aclose()
        await self.outbox.close()

    def publish(self, room: str, message: dict[str, Any], history: bool = False) -> None:
        self.hub.publish(room, message)
        if history:
            text = json.dumps(message["event"], ensure_ascii=False, separators=(",", ":"))
            self.outbox.command("rpush", events_key(room), text)
            self.outbox.command("ltrim", events_key(room), -EVENTS_KEPT, -1)
        self.outbox.room({"op": "publish", "room": room, "message": message, "history": history})

    def comment(self, room: str, item: dict[str, Any]) -> None:
        self.hub.comment(room, item)
        self.outbox.room({"op": "comment", "room": room, "item": item})

    def like(self, room: str, count: int) -> None:
        self.hub.like(room, count)
        self.outbox.room({"op": "like", "room": room, "count": count})

    def send_op(self, op: dict[str, Any]) -> None:
        """An operation for the other processes only (a command for a show's process, say)."""
        self.outbox.room(op)

    async def share_counts(self, rooms: list[str]) -> None:
        """Write this process's viewer counts and read the others'; call about once a second."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for room in rooms:
            key = _viewers_key(room)
            pipe.hset(key, self.node, f"{self.hub.local_count(room)} {now + COUNT_TTL}")
            pipe.expire(key, int(COUNT_TTL * 4))
            pipe.hgetall(key)
        replies = await pipe.execute()
        for i, room in enumerate(rooms):
            others = 0
            for node, value in replies[3 * i + 2].items():
                count, until = value.split()
                if node != self.node and float(until) >= now:
                    others += int(count)
            before = self.hub.count(room)
            self.hub.elsewhere[room] = others
            if self.hub.count(room) != before:
                self.hub.publish(room, {"type": "viewers", "count": self.hub.count(room)})

    async def _listen(self) -> None:
        while True:
            try:
                async for packet in self._pubsub.listen():
                    if packet.get("type") == "message":
                        self._deliver(packet["data"])
            except asyncio.CancelledError:
                raise
            except RedisError as exc:  # redis-py resubscribes on reconnect; messages sent meanwhile are lost
                log.warning("redis: room subscription interrupted (%s), reconnecting", exc)
                await asyncio.sleep(0.5)

    def _deliver(self, data: str) -> None:
        try:
            packet = json.loads(data)
            if packet["from"] == self.node:
                return  # delivered locally when it was published
            for op in packet["ops"]:
                self._apply(op)
        except Exception:  # a bad packet from a newer/older process must not stop the room
            log.exception("redis: cannot deliver a room packet")

    def _apply(self, op: dict[str, Any]) -> None:
        if self.on_op is not None:
            self.on_op(op)
        kind = op["op"]
        if kind == "publish":
            self.hub.publish(op["room"], op["message"])
        elif kind == "comment":
            self.hub.comment(op["room"], op["item"])
        elif kind == "like":
            self.hub.like(op["room"], int(op["count"]))
