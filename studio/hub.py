"""Rooms and fan-out over aiohttp websockets.

A broadcast is JSON-encoded once and the same str is queued for every viewer. Each viewer
has a bounded outbox drained by its own sender task, so a slow reader stalls nobody else;
when its outbox is full it is cut off (1008 "too slow"), which bounds memory per viewer.
Chatty traffic is coalesced on a ticker: comments go out as one batch per interval, viewer
counts and like totals at most once a second and only when they changed.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

from aiohttp import web

from studio.moderation import LikeCounter

log = logging.getLogger(__name__)

STATS_INTERVAL = 1.0  # seconds between `viewers` / `likes` broadcasts of one room
MAX_BATCH = 100  # comments; a fuller batch goes out before the tick
CLOSE_TIMEOUT = 1.0  # seconds to wait for a close handshake before dropping the transport
TOO_SLOW = 1008  # policy violation
GOING_AWAY = 1001


def encode(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class Client:
    """One viewer connection."""

    def __init__(
        self, ws: web.WebSocketResponse, viewer_id: str, nickname: str, queue_limit: int = 256
    ) -> None:
        self.ws = ws
        self.viewer_id = viewer_id
        self.nickname = nickname
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_limit)
        self._sender: asyncio.Task[None] | None = None
        self._broken = False

    @property
    def pending(self) -> int:
        """Messages queued but not yet handed to the socket."""
        return self._outbox.qsize()

    def offer(self, text: str) -> bool:
        """Queue without waiting; False when the outbox is full or the socket is gone."""
        if self._broken:
            return False
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True

    def start(self) -> None:
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._pump())

    def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()

    async def close(self, code: int, reason: str) -> None:
        """Stop sending, then close; a peer that will not answer gets its transport dropped."""
        self.stop()
        if self._sender is not None:
            await asyncio.wait([self._sender])  # never raises, unlike awaiting a cancelled task
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=reason.encode(), drain=False)
        except TimeoutError:
            pass  # aiohttp closes the transport itself when close() is interrupted

    async def _pump(self) -> None:
        try:
            while True:
                await self.ws.send_str(await self._outbox.get())
        except (ConnectionError, RuntimeError):  # peer gone or socket closed under us
            self._broken = True


@dataclass
class _Room:
    clients: set[Client] = field(default_factory=set)
    comments: list[dict] = field(default_factory=list)
    likes: LikeCounter = field(default_factory=LikeCounter)
    viewers_sent: int = 0
    viewers_at: float = float("-inf")
    likes_at: float = float("-inf")


class Hub:
    """Rooms of viewers. Loop-only: call every method from the event loop's thread.

    Rooms live until close(): the app admits only known stream ids, and a room keeps its like total.
    """

    def __init__(self, batch_interval: float = 0.1) -> None:
        self.batch_interval = batch_interval
        self._rooms: dict[str, _Room] = {}
        self._room_of: dict[Client, str] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.wait([self._ticker])
            self._ticker = None
        clients = list(self._room_of)
        self._rooms.clear()
        self._room_of.clear()
        await asyncio.gather(
            *(c.close(GOING_AWAY, "server shutting down") for c in clients),
            *self._closing,
        )

    def join(self, room: str, client: Client) -> None:
        self._rooms.setdefault(room, _Room()).clients.add(client)
        self._room_of[client] = room
        client.start()

    def leave(self, room: str, client: Client) -> None:
        client.stop()
        if self._room_of.get(client) == room:
            del self._room_of[client]
            self._rooms[room].clients.discard(client)

    def count(self, room: str) -> int:
        r = self._rooms.get(room)
        return len(r.clients) if r else 0

    def publish(self, room: str, message: dict) -> None:
        r = self._rooms.get(room)
        if r is None:
            return
        text = encode(message)
        slow = [c for c in r.clients if not c.offer(text)]
        for c in slow:
            self._cut_off(c)

    def comment(self, room: str, item: dict) -> None:
        r = self._rooms.get(room)
        if r is None:
            return
        r.comments.append(item)
        if len(r.comments) >= MAX_BATCH:
            self._flush_comments(room, r)

    def like(self, room: str, count: int = 1) -> None:
        r = self._rooms.get(room)
        if r is not None:
            r.likes.add(count)

    def send(self, client: Client, message: dict) -> None:
        if not client.offer(encode(message)):
            self._cut_off(client)

    def _cut_off(self, client: Client) -> None:
        room = self._room_of.get(client)
        if room is None:
            return  # already being dropped
        log.info("dropping slow viewer %s from room %s", client.viewer_id, room)
        self.leave(room, client)
        task = asyncio.get_running_loop().create_task(client.close(TOO_SLOW, "too slow"))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _flush_comments(self, name: str, room: _Room) -> None:
        if room.comments:
            items, room.comments = room.comments, []
            self.publish(name, {"type": "comments", "items": items})

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.batch_interval)
            now = loop.time()
            for name, room in list(self._rooms.items()):
                try:
                    self._tick_room(name, room, now)
                except Exception:  # one bad item must not silence every room for good
                    log.exception("hub tick failed for room %s", name)

    def _tick_room(self, name: str, room: _Room, now: float) -> None:
        self._flush_comments(name, room)
        n = len(room.clients)
        if n != room.viewers_sent and now - room.viewers_at >= STATS_INTERVAL:
            room.viewers_sent, room.viewers_at = n, now
            self.publish(name, {"type": "viewers", "count": n})
        if now - room.likes_at >= STATS_INTERVAL:
            total = room.likes.take_total_if_changed()
            if total is not None:
                room.likes_at = now
                self.publish(name, {"type": "likes", "total": total})
