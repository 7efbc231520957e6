from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from studio.hub import Client, Hub
from studio.moderation import CommentPolicy
from tests.serving import served

ROOM = "s1"


@dataclass
class Studio:
    hub: Hub
    clients: list[Client]  # server side, in connection order
    session: aiohttp.ClientSession
    base: str

    async def connect(self, viewer: str) -> aiohttp.ClientWebSocketResponse:
        n = len(self.clients)
        ws = await self.session.ws_connect(f"{self.base}/ws/{ROOM}?viewer={viewer}&nick=昵称{viewer}")
        while len(self.clients) == n:  # wait until the server has joined it
            await asyncio.sleep(0.005)
        return ws


@asynccontextmanager
async def studio(policy: CommentPolicy | None = None, buffer_limit: int = 256 * 1024,
                 chunk: int = 1000) -> AsyncIterator[Studio]:
    """A tiny app shaped like the real one: join on connect, comments through the policy."""
    hub = Hub(batch_interval=0.05, chunk=chunk)
    policy = policy or CommentPolicy()
    clients: list[Client] = []
    ids = itertools.count(1)
    loop = asyncio.get_running_loop()

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        viewer = request.query["viewer"]
        client = Client(ws, viewer, request.query["nick"], request.transport, buffer_limit=buffer_limit)
        room = request.match_info["room"]
        hub.join(room, client)
        clients.append(client)
        try:
            async for msg in ws:
                data = json.loads(msg.data)
                if data["type"] == "comment":
                    v = policy.check(viewer, data["text"], loop.time())
                    if v.ok:
                        item = {"id": str(next(ids)), "viewer_id": viewer, "nickname": client.nickname,
                                "text": v.text, "ts": loop.time()}
                        hub.comment(room, item)
                    else:
                        hub.send(client, {"type": "error", "message": v.error})
                elif data["type"] == "like":
                    hub.like(room, data.get("count", 1))
        finally:
            hub.leave(room, client)
        return ws

    app = web.Application()
    app.router.add_get("/ws/{room}", ws_handler)
    async with served(app) as base:
        await hub.start()
        try:
            async with aiohttp.ClientSession() as session:
                yield Studio(hub, clients, session, base)
        finally:
            await hub.close()


def run(scenario: Callable[[], object]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(12):
            await scenario()

    asyncio.run(bounded())


async def read_until(ws: aiohttp.ClientWebSocketResponse, done: Callable[[dict], bool]) -> list[dict]:
    """Every message up to and including the first one `done` accepts."""
    seen = []
    while True:
        msg = await ws.receive()
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        seen.append(json.loads(msg.data))
        if done(seen[-1]):
            return seen


def comment_texts(messages: list[dict]) -> list[str]:
    return [i["text"] for m in messages if m["type"] == "comments" for i in m["items"]]


def test_comment_round_trip_between_two_viewers():
    async def scenario():
        async with studio() as s:
            a, b = await s.connect("a"), await s.connect("b")
            await a.send_json({"type": "comment", "text": "这件 <b>多少钱</b>？"})
            got = await read_until(b, lambda m: m["type"] == "comments")
            [item] = got[-1]["items"]
            assert (item["text"], item["viewer_id"], item["nickname"]) == ("这件 <b>多少钱</b>？", "a", "昵称a")

    run(scenario)


def test_fast_comments_arrive_batched_in_order():
    async def scenario():
        async with studio(CommentPolicy(per_viewer_per_10s=100)) as s:
            a, b = await s.connect("a"), await s.connect("b")
            sent = [f"第{i}条" for i in range(50)]
            for text in sent:
                await a.send_json({"type": "comment", "text": text})
            got = await read_until(b, lambda m: m["type"] == "comments" and m["items"][-1]["text"] == sent[-1])
            batches = [m for m in got if m["type"] == "comments"]
            assert comment_texts(got) == sent
            assert len(batches) < 50

    run(scenario)


def test_banned_word_is_masked_for_receivers():
    async def scenario():
        async with studio() as s:
            a, b = await s.connect("a"), await s.connect("b")
            await a.send_json({"type": "comment", "text": "便宜的加微信找我"})
            got = await read_until(b, lambda m: m["type"] == "comments")
            assert comment_texts(got) == ["便宜的***找我"]

    run(scenario)


def test_rate_limit_errors_go_to_the_sender_only():
    async def scenario():
        async with studio(CommentPolicy(per_viewer_per_10s=2)) as s:
            a, b = await s.connect("a"), await s.connect("b")
            for i in range(3):
                await a.send_json({"type": "comment", "text": f"刷屏{i}"})
            got_a = await read_until(a, lambda m: m["type"] == "error")
            assert got_a[-1] == {"type": "error", "message": "发言太快了，请稍后再试"}
            got_b = await read_until(b, lambda m: "刷屏1" in comment_texts([m]))
            s.hub.publish(ROOM, {"type": "event", "event": {"kind": "toast", "text": "marker"}})
            got_b += await read_until(b, lambda m: m["type"] == "event")
            assert comment_texts(got_b) == ["刷屏0", "刷屏1"]
            assert [m for m in got_b if m["type"] == "error"] == []

    run(scenario)


def test_viewer_count_updates_on_change_and_is_throttled():
    async def scenario():
        async with studio() as s:
            a = await s.connect("a")
            assert (await read_until(a, lambda m: m["type"] == "viewers"))[-1]["count"] == 1
            others = [await s.connect(f"v{i}") for i in range(10)]
            counts = [m["count"] for m in await read_until(a, lambda m: m.get("count") == 11)
                      if m["type"] == "viewers"]
            assert counts[-1] == 11 and len(counts) <= 3  # 10 joins, at most one message a second
            assert all(x != y for x, y in itertools.pairwise(counts))  # only changes are sent
            for ws in others[:4]:
                await ws.close()
            counts = [m["count"] for m in await read_until(a, lambda m: m.get("count") == 7)
                      if m["type"] == "viewers"]
            assert counts == sorted(counts, reverse=True) and len(counts) <= 3
            assert s.hub.count(ROOM) == 7

    run(scenario)


def test_likes_are_aggregated():
    async def scenario():
        async with studio() as s:
            a, b = await s.connect("a"), await s.connect("b")
            for _ in range(30):
                await a.send_json({"type": "like"})
            await a.send_json({"type": "like", "count": 20})
            got = await read_until(b, lambda m: m.get("total") == 50)
            totals = [m["total"] for m in got if m["type"] == "likes"]
            assert totals == sorted(set(totals)) and len(totals) < 31

    run(scenario)


def test_slow_reader_is_cut_off_and_memory_stays_bounded():
    limit = 1_000_000  # bytes left unread in the server
    big = "货" * 100_000  # ~300 KB of JSON per message

    async def scenario():
        async with studio(buffer_limit=limit) as s:
            slow = await s.connect("slow")  # never reads until the end
            normal = await s.connect("normal")
            slow_client = s.clients[0]
            received: list[int] = []
            progress = asyncio.Event()

            async def read_normal():
                async for msg in normal:
                    m = json.loads(msg.data)
                    if m["type"] == "event":
                        received.append(m["event"]["seq"])
                        progress.set()

            reader = asyncio.create_task(read_normal())
            published, peak = 0, 0
            while s.hub.count(ROOM) == 2 and published < 400:
                s.hub.publish(ROOM, {"type": "event", "event": {"kind": "toast", "text": big, "seq": published}})
                published += 1
                peak = max(peak, *(c.pending for c in s.clients))
                while len(received) < published:  # lockstep with the normal viewer
                    progress.clear()
                    await progress.wait()
            assert s.hub.count(ROOM) == 1, "the slow reader was never cut off"
            assert peak <= limit + 300_100  # never more than one frame past the limit
            assert published < 400

            s.hub.publish(ROOM, {"type": "event", "event": {"kind": "toast", "text": "after", "seq": published}})
            while len(received) <= published:
                progress.clear()
                await progress.wait()
            assert received == list(range(published + 1))  # the normal viewer missed nothing
            reader.cancel()

            seqs = []
            while (msg := await slow.receive()).type is aiohttp.WSMsgType.TEXT:
                m = json.loads(msg.data)
                if m["type"] == "event":
                    seqs.append(m["event"]["seq"])
            assert msg.type is aiohttp.WSMsgType.CLOSE
            assert (msg.data, msg.extra) == (1008, "too slow")
            assert seqs == list(range(len(seqs))) and len(seqs) <= published  # in order, then cut off
            assert slow_client.pending <= limit + 300_100

    run(scenario)


def test_close_says_going_away_to_every_viewer():
    async def scenario():
        async with studio() as s:
            viewers = [await s.connect(f"v{i}") for i in range(3)]
            await s.hub.close()
            for ws in viewers:
                while (msg := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                    pass
                assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1001)
            assert s.hub.count(ROOM) == 0

    run(scenario)


def test_big_room_fans_out_in_chunks_in_order_and_drops_leavers():
    async def scenario():
        async with studio(chunk=2) as s:  # a "big" room: more viewers than one chunk
            viewers = [await s.connect(f"v{i}") for i in range(5)]
            for k in range(20):  # published faster than the rounds go out: later ones ride together
                s.hub.publish(ROOM, {"type": "event", "event": {"kind": "toast", "seq": k}})
            await viewers[4].close()  # leaves while the fan-out is under way
            for ws in viewers[:4]:
                got = await read_until(ws, lambda m: m.get("event", {}).get("seq") == 19)
                assert [m["event"]["seq"] for m in got if m["type"] == "event"] == list(range(20))
            assert s.hub.count(ROOM) == 4
            s.hub.publish(ROOM, {"type": "event", "event": {"kind": "toast", "seq": 20}})
            await s.hub.close()  # a fan-out still running is stopped, then everyone is told goodbye
            for ws in viewers[:4]:
                while (msg := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                    pass
                assert msg.data == 1001

    run(scenario)
