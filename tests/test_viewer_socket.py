"""ViewerSocket on a real port: text handled as parsed, control frames as before, our own heartbeat."""
from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import WSMsgType, web
from test_hub import run

from studio.viewer_socket import ViewerSocket
from tests.serving import served


@asynccontextmanager
async def server(on_text: Callable[[ViewerSocket, str], None], heartbeat: float = 15.0) -> AsyncIterator[dict]:
    """One ViewerSocket route; `seen` records what reached the handler's `async for`, `ended` its return."""
    state: dict = {"seen": [], "ended": asyncio.Event(), "sockets": []}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = ViewerSocket(lambda text: on_text(ws, text), heartbeat=heartbeat, max_msg_size=4096)
        state["sockets"].append(ws)
        await ws.prepare(request)
        async for msg in ws:
            state["seen"].append(msg.type)
        state["ended"].set()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    async with served(app) as base:
        state["url"] = f"{base}/ws"
        yield state


def echo(ws: ViewerSocket, text: str) -> None:
    """Answers without awaiting, the way the studio answers claims (straight to the transport)."""
    if text == "boom":
        raise RuntimeError("a handler bug")
    payload = f"echo:{text}".encode()
    ws._req.transport.write(bytes([0x81, len(payload)]) + payload)  # type: ignore[union-attr]


def test_text_messages_are_handled_in_order_and_skip_the_receive_loop():
    async def scenario():
        async with server(echo) as s, aiohttp.ClientSession() as session:
            ws = await session.ws_connect(s["url"])
            for i in range(50):
                await ws.send_str(f"m{i}")
            got = [(await ws.receive_str()) for _ in range(50)]
            assert got == [f"echo:m{i}" for i in range(50)]
            await ws.send_bytes(b"\x01\x02")  # not text: still comes through the handler's loop
            await ws.close()
            await asyncio.wait_for(s["ended"].wait(), 5)
            assert s["seen"] == [WSMsgType.BINARY], s["seen"]
    run(scenario)


def test_a_failing_handler_keeps_the_socket_open():
    async def scenario():
        async with server(echo) as s, aiohttp.ClientSession() as session:
            ws = await session.ws_connect(s["url"])
            await ws.send_str("boom")
            await ws.send_str("after")
            assert await ws.receive_str() == "echo:after"
            assert not ws.closed
    run(scenario)


def test_pings_are_answered_and_a_close_is_a_clean_handshake():
    async def scenario():
        async with server(echo) as s, aiohttp.ClientSession() as session:
            ws = await session.ws_connect(s["url"], autoping=False)
            await ws.ping(b"are you there")
            msg = await ws.receive()
            assert (msg.type, msg.data) == (WSMsgType.PONG, b"are you there")
            await ws.close()
            assert ws.close_code == 1000
            await asyncio.wait_for(s["ended"].wait(), 5)
    run(scenario)


async def raw_upgrade(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket client that completes the handshake and then answers nothing, not even pings."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


def test_a_silent_viewer_is_pinged_then_dropped():
    async def scenario():
        async with server(echo, heartbeat=0.2) as s:
            reader, writer = await raw_upgrade(s["url"])
            start = time.monotonic()
            assert await asyncio.wait_for(reader.readexactly(2), 2) == b"\x89\x00"  # a ping, after one interval
            pinged = time.monotonic() - start
            assert await asyncio.wait_for(reader.read(), 2) == b""  # then dropped: no pong came
            dropped = time.monotonic() - start
            assert 0.15 <= pinged < 0.6 and pinged + 0.15 <= dropped < 1.5, (pinged, dropped)
            await asyncio.wait_for(s["ended"].wait(), 5)  # the handler returned: its viewer leaves the room
            writer.close()
    run(scenario)


def test_a_viewer_that_answers_pings_or_talks_stays_connected():
    async def scenario():
        async with server(echo, heartbeat=0.1) as s, aiohttp.ClientSession() as session:
            quiet = await session.ws_connect(s["url"])  # aiohttp answers pings while we read
            talker = await session.ws_connect(s["url"], autoping=False)  # never pongs, but keeps sending
            reading = asyncio.create_task(quiet.receive())
            for i in range(20):  # ten intervals, the talker heard twice in each
                await talker.send_str(f"t{i}")
                assert (await talker.receive()).data == f"echo:t{i}"
                await asyncio.sleep(0.05)
            assert not reading.done() and not quiet.closed and not talker.closed
            reading.cancel()
            assert not s["ended"].is_set()
    run(scenario)
