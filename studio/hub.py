"""Rooms and fan-out over aiohttp websockets.

A broadcast is JSON-encoded and framed once (RFC 6455, unmasked text frame); the same bytes
are written straight to every viewer's transport. No task or queue per viewer: with ten
thousand viewers in a room a per-viewer `send_str` and sender task cost more CPU and memory
than the socket itself. Frames are written whole and synchronously, so they never interleave
with aiohttp's own control frames (ping, pong, close) on the same transport.

A slow reader's bytes pile up in its transport's write buffer; once that passes
`buffer_limit` the viewer is cut off (1008 "too slow"), which bounds memory per viewer and
stalls nobody else. Chatty traffic is coalesced on a ticker: comments go out as one batch per
interval, viewer counts and like totals at most once a second and only when they changed.

A room bigger than one chunk (1,000 viewers) is written by a fan-out task, a chunk at a time
with the loop free in between, and what is published meanwhile goes out together in the next
round. Each write costs a syscall per socket (~12 us here, whatever the size), so a big room's
comment batches are paced by how long a round takes: one round apart at least.
"""
from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web

from studio.moderation import LikeCounter

log = logging.getLogger(__name__)

STATS_INTERVAL = 1.0  # seconds between `viewers` / `likes` broadcasts of one room
MAX_BATCH = 100  # comments; a fuller batch goes out before the tick
CLOSE_TIMEOUT = 1.0  # seconds to wait for a close handshake before dropping the transport
FANOUT_SHARE = 1.0  # comment batches of a big room start at least one fan-out round apart
CHUNK = 1000  # viewers written between yields to the loop in a big room's fan-out
MAX_PENDING_COMMENTS = 1000  # a room's comments waiting for their batch; older ones are dropped beyond it
BUFFER_LIMIT = 256 * 1024  # bytes a viewer may leave unread in the server before it is cut off
TOO_SLOW = 1008  # policy violation
GOING_AWAY = 1001


def encode(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def text_frame(text: str) -> bytes:
    """One unmasked, uncompressed websocket text frame (what a server sends)."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class Client:
    """One viewer connection: its websocket, the transport under it, and who it is."""

    __slots__ = ("__weakref__", "address", "buffer_limit", "nickname", "transport", "viewer_id", "ws")

    def __init__(self, ws: web.WebSocketResponse, viewer_id: str, nickname: str,
                 transport: asyncio.BaseTransport | None, address: str = "",
                 buffer_limit: int = BUFFER_LIMIT) -> None:
        self.ws = ws
        self.transport: asyncio.WriteTransport | None = transport  # type: ignore[assignment]
        self.viewer_id = viewer_id
        self.nickname = nickname
        self.address = address  # the client's IP, for per-address limits
        self.buffer_limit = buffer_limit

    @property
    def pending(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        t = self.transport
        return 0 if t is None or t.is_closing() else t.get_write_buffer_size()

    def offer(self, frame: bytes) -> bool:
        """Write a frame without waiting; False only when the viewer is too far behind.

        A transport that is already closing takes nothing and is not "slow": its handler
        is about to leave the room.
        """
        t = self.transport
        if t is None or t.is_closing():
            return True
        if t.get_write_buffer_size() > self.buffer_limit:
            return False
        t.write(frame)
        return True

    async def close(self, code: int, reason: str) -> None:
        """Close; a peer that will not answer gets its transport dropped."""
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=reason.encode(), drain=False)
        except TimeoutError:
            pass  # aiohttp closes the transport itself when close() is interrupted
        except (ConnectionError, RuntimeError):
            pass  # already gone


@dataclass
class _Room:
    clients: set[Client] = field(default_factory=set)
    backlog: list[bytes] = field(default_factory=list)  # frames waiting for the room's fan-out task
    fanout: asyncio.Task[None] | None = None
    round_s: float = 0.0  # how long the last fan-out round took (wall clock)
    comments: list[dict] = field(default_factory=list)
    likes: LikeCounter = field(default_factory=LikeCounter)
    viewers_sent: int = 0
    viewers_at: float = float("-inf")
    likes_at: float = float("-inf")
    comments_at: float = float("-inf")


class Hub:
    """Rooms of viewers. Loop-only: call every method from the event loop's thread.

    Rooms live until close(): the app admits only known stream ids, and a room keeps its like total.
    """

    def __init__(self, batch_interval: float = 0.1, chunk: int = CHUNK) -> None:
        self.batch_interval = batch_interval
        self.chunk = chunk
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
        fanouts = [r.fanout for r in self._rooms.values() if r.fanout is not None]
        for task in fanouts:
            task.cancel()
        if fanouts:
            await asyncio.wait(fanouts)
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

    def leave(self, room: str, client: Client) -> None:
        if self._room_of.get(client) == room:
            del self._room_of[client]
            self._rooms[room].clients.discard(client)

    def count(self, room: str) -> int:
        r = self._rooms.get(room)
        return len(r.clients) if r else 0

    def publish(self, room: str, message: dict) -> None:
        """To every viewer of the room, in publish order.

        A small room is written at once. A big one is written by a task, CHUNK viewers at a
        time with the loop free in between, so one broadcast to ten thousand sockets does not
        hold up claims and comments for the whole of it. Messages published while a round is
        going out are sent together in the next round, one write per viewer: a write is a
        syscall per socket, whatever its size, so a busy room costs fewer of them.
        """
        r = self._rooms.get(room)
        if r is None:
            return
        frame = text_frame(encode(message))
        if len(r.clients) <= self.chunk and not r.backlog:
            self._write(r.clients, frame)
            return
        r.backlog.append(frame)
        if r.fanout is None:
            r.fanout = asyncio.get_running_loop().create_task(self._fan_out(r))

    def comment(self, room: str, item: dict) -> None:
        r = self._rooms.get(room)
        if r is None:
            return
        r.comments.append(item)
        if len(r.comments) > MAX_PENDING_COMMENTS:
            del r.comments[:-MAX_PENDING_COMMENTS]
        if len(r.comments) >= MAX_BATCH:
            self._flush_comments(room, r)

    def like(self, room: str, count: int = 1) -> None:
        r = self._rooms.get(room)
        if r is not None:
            r.likes.add(count)

    def send(self, client: Client, message: dict) -> None:
        self.send_text(client, encode(message))

    def send_text(self, client: Client, text: str) -> None:
        """To one viewer, `text` being a JSON message already encoded."""
        if not client.offer(text_frame(text)):
            self._cut_off(client)

    def _write(self, clients: Iterable[Client], frame: bytes) -> None:
        slow = [c for c in clients if not c.offer(frame)]
        for c in slow:
            self._cut_off(c)

    async def _fan_out(self, room: _Room) -> None:
        try:
            loop = asyncio.get_running_loop()
            while room.backlog:
                began = loop.time()
                frame = b"".join(room.backlog)  # whole frames, in order
                room.backlog.clear()
                clients = list(room.clients)  # who is in the room when its turn comes
                for start in range(0, len(clients), self.chunk):
                    self._write(clients[start:start + self.chunk], frame)
                    await asyncio.sleep(0)
                room.round_s = loop.time() - began
        finally:
            room.fanout = None

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
        n = len(room.clients)
        # a big room gets fewer, fuller batches: each costs a write per viewer, and fan-out may take
        # at most about half the loop's time (the rest serves claims and comments)
        if now - room.comments_at >= FANOUT_SHARE * room.round_s - 1e-3:
            room.comments_at = now
            self._flush_comments(name, room)
        if n != room.viewers_sent and now - room.viewers_at >= STATS_INTERVAL:
            room.viewers_sent, room.viewers_at = n, now
            self.publish(name, {"type": "viewers", "count": n})
        if now - room.likes_at >= STATS_INTERVAL:
            total = room.likes.take_total_if_changed()
            if total is not None:
                room.likes_at = now
                self.publish(name, {"type": "likes", "total": total})
