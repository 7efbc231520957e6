"""A websocket response that hands each text message to a callback the moment it is parsed.

aiohttp's `receive()` puts every message in a queue, resolves a future and resumes the handler's
task for it: about a fifth of the loop's time per message when ten thousand viewers race for
coupons and each claim is one small frame. Here the frame parser (aiohttp's own, compiled)
calls `on_text` directly from `data_received`; control frames (ping, pong, close) and binary
messages still go through the queue, so `async for msg in ws` sees them as before and aiohttp
keeps answering pings and closing handshakes.

aiohttp's heartbeat is replaced for the same reason: it schedules a loop callback on every read
to push its timer back. Here a parsed frame only sets a flag, and one timer a socket checks it every
`heartbeat` seconds: a quiet viewer is pinged, and one still quiet a whole interval after the
ping is dropped (what aiohttp does for a missing pong).

This reaches into aiohttp's private `_post_start` and its reader's queue, which is why aiohttp
is pinned to one version; tests/test_viewer_socket.py fails loudly if an upgrade moves them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE

log = logging.getLogger(__name__)
TEXT = WSMsgType.TEXT


class _TextFirst(WebSocketDataQueue):  # type: ignore[misc,valid-type]
    """The reader's queue: text goes straight to the callback, anything else is queued."""

    def __init__(self, protocol: Any, limit: int, *, loop: Any, on_text: Callable[[str], None]) -> None:
        super().__init__(protocol, limit, loop=loop)
        self.on_text = on_text
        self.heard = False  # a whole frame (any kind) came in since the heartbeat last looked

    def feed_data(self, data: Any, size: int) -> None:
        self.heard = True
        if data[0] is not TEXT:
            super().feed_data(data, size)
            return
        try:
            self.on_text(data[1])
        except Exception:  # one bad message must not break the parser and drop the socket
            log.exception("viewer message handler failed")


PING = b"\x89\x00"  # an empty ping frame, unmasked as a server sends it


class ViewerSocket(web.WebSocketResponse):
    """`on_text(text)` runs inside `data_received`: it must not block, and must not await."""

    def __init__(self, on_text: Callable[[str], None], heartbeat: float = 15.0, **kwargs: Any) -> None:
        super().__init__(heartbeat=None, **kwargs)
        self.on_text = on_text
        self.interval = heartbeat
        self._pinged = False
        self._transport: Any = None

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        # aiohttp 3.14.5's _post_start, with the queue swapped for _TextFirst and our own heartbeat
        self._ws_protocol = protocol
        self._writer = writer
        self._reader = _TextFirst(request._protocol, DEFAULT_CHUNK_SIZE, loop=self._loop, on_text=self.on_text)
        self._parser = WebSocketReader(self._reader, self._max_msg_size, compress=bool(self._compress),
                                       decode_text=self._decode_text)
        request.protocol.set_parser(self._parser)
        request.protocol.keep_alive(False)
        self._transport = request.transport
        self._loop.call_later(self.interval, self._beat)

    def _beat(self) -> None:
        t = self._transport
        if t is None or t.is_closing():
            return
        if self._reader.heard:
            self._reader.heard = self._pinged = False
        elif self._pinged:  # no pong, nor anything else, for a whole interval after the ping
            log.info("viewer socket silent after a ping: dropped")
            t.close()
            return
        else:
            t.write(PING)
            self._pinged = True
        self._loop.call_later(self.interval, self._beat)
