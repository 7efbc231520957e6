"""The Redis scale-out against a real redis-server: the claim script, the order consumer, and two real
`linkup serve` processes sharing one Redis and one data folder."""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from script_gen.rundown import parse_rundown
from studio.auth import Identity, Tokens
from studio.claims_store import ClaimsStore
from studio.deals import Batch, ClaimRequest, Deals
from studio.redis_bus import Outbox
from studio.redis_store import GROUP, ORDERS, RedisClaims, batch_key
from studio.server import Config, Studio, build_app
from tests.redis_server import free_port, redis_server
from tests.serving import served
from tests.test_claims_store import rows as db_rows
from tests.test_server import SHOW as ONE_SHOW


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


async def backend(url: str, folder: Path, node: str, idle_timeout: float = 30.0) -> RedisClaims:
    """One process's claims backend (its own connection pool), started."""
    redis = Redis.from_url(url, decode_responses=True)
    claims = RedisClaims(redis, Outbox(redis, node), ClaimsStore(folder / "claims.sqlite3", unique_requests=True), node, idle_timeout)
    await claims.start()
    await claims.outbox.start()
    return claims


async def stop(*backends: RedisClaims) -> None:
    for claims in backends:
        await claims.outbox.close()
        await claims.close()


async def flushed(url: str) -> None:
    async with Redis.from_url(url) as r:
        await r.flushall()


def test_claim_script_holds_under_concurrent_claims_from_two_clients(redis_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        await flushed(redis_url)
        a = await backend(redis_url, tmp_path, "p1")
        b = await backend(redis_url, tmp_path, "p2")
        try:
            batch = Batch("B1", "s1", "cup", 30, 2, "满50减5")
            await a.add_batch(batch)
            await b.add_batch(Batch("B1", "s1", "cup", 999, 9, "other terms"))  # the first terms stay
            assert b.deals.batches["B1"] == batch

            early = await a.claim(ClaimRequest("v0:early", "v0", "s1", "B1", 100.0))
            assert (early.ok, early.reason, early.left) == (False, "not_open", 30)
            assert a.cue("s1", "link_up", "cup", 10.0) == ["B1"]
            await a.outbox.flush()
            behind = await b.claim(ClaimRequest("v0:behind", "v0", "s1", "B1", 9.5))  # player behind the link-up
            assert (behind.ok, behind.reason) == (False, "not_open")

            # 100 viewers x 3 attempts, through both processes at once; then every attempt again via the other
            reqs = [ClaimRequest(f"v{v}:r{k}", f"v{v}", "s1", "B1", 11.0) for v in range(100) for k in range(3)]
            first = await asyncio.gather(*((a, b)[i % 2].claim(r) for i, r in enumerate(reqs)))
            again = await asyncio.gather(*((b, a)[i % 2].claim(r) for i, r in enumerate(reqs)))
            assert again == first  # same request id -> the same answer, whichever process asks
            granted = [r for r in first if r.ok]
            assert len(granted) == 30  # exactly the stock
            assert sorted(r.left for r in granted) == list(range(30))  # no two grants saw the same stock
            per_viewer = Counter(r.request_id.split(":")[0] for r in granted)
            assert max(per_viewer.values()) <= 2
            assert {r.reason for r in first if not r.ok} <= {"sold_out", "limit_reached"}
            assert "sold_out" in {r.reason for r in first}
            assert {r.coupon for r in granted} == {"满50减5"}

            retried = await a.claim(ClaimRequest("v0:behind", "v0", "s1", "B1", 12.0))  # not_open was not final
            assert retried.reason in ("limit_reached", "sold_out")
            other = await a.claim(ClaimRequest("v1:x", "v1", "s2", "B1", 12.0))  # another stream's batch
            assert (other.ok, other.reason) == (False, "unknown_batch")
            assert a.cue("s1", "hide_card", "cup", 20.0) == ["B1"]  # ends 10 media seconds later
            await a.outbox.flush()
            late = await b.claim(ClaimRequest("v7:late", "v7", "s1", "B1", 30.5))
            assert (late.ok, late.reason) == (False, "closed")
            await b.refresh()
            assert (b.deals.left("B1"), b.deals.granted("B1"), b.deals.open_at("B1")) == (0, 30, 10.0)
            assert b.deals.state("B1", 15.0) == "sold_out" and b.deals.state("B1", 31.0) == "closed"

            await a.consumer.drain(10)
        finally:
            await stop(a, b)
        rows = db_rows(tmp_path / "claims.sqlite3", "SELECT request_id FROM claims WHERE ok = 1")
        assert sorted(r for (r,) in rows) == sorted(r.request_id for r in granted)

    asyncio.run(main())


OPS = st.lists(st.one_of(
    st.tuples(st.just("claim"), st.integers(0, 3), st.integers(0, 5), st.sampled_from([0.0, 4.0, 5.0, 9.0, 20.0, 40.0]),
              st.sampled_from(["s1", "s1", "s1", "s2"])),
    st.tuples(st.just("link_up"), st.sampled_from([0.0, 5.0, 9.0])),
    st.tuples(st.just("hide_card"), st.sampled_from([5.0, 10.0, 25.0])),
), max_size=30)


def test_claim_script_answers_exactly_like_the_deals_core(redis_url: str, tmp_path: Path) -> None:
    """Any sequence of claims, retries, link-ups and card hides: Redis and studio.deals agree on every answer."""
    loop = asyncio.new_event_loop()
    loop.run_until_complete(flushed(redis_url))
    claims = loop.run_until_complete(backend(redis_url, tmp_path, "p1"))
    names = itertools.count()

    async def run(ops: list[tuple], stock: int, limit: int) -> None:
        name = f"H{next(names)}"  # a batch, and a product of its own: cues touch every batch of a product
        batch = Batch(name, "s1", name, stock, limit, "满50减5")
        deals = Deals()
        deals.add_batch(batch)
        await claims.add_batch(batch)
        for op in ops:
            if op[0] == "claim":
                _, viewer, rid, media_time, stream = op
                req = ClaimRequest(f"{name}:v{viewer}:r{rid}", f"v{viewer}", stream, name, media_time)
                expected = deals.decide(req)
                got = await claims.claim(req)
                assert got == expected, (op, got, expected)
            else:
                kind, media_time = op
                touched = claims.cue("s1", kind, name, media_time)
                assert touched == deals.cue("s1", kind, name, media_time)
                await claims.outbox.flush()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ops=OPS, stock=st.integers(0, 4), limit=st.integers(1, 3))
    def check(ops: list[tuple], stock: int, limit: int) -> None:
        loop.run_until_complete(run(ops, stock, limit))

    try:
        check()
    finally:
        loop.run_until_complete(stop(claims))
        loop.close()


def test_consumer_acks_only_after_commit_and_replays_what_a_dead_or_restarted_consumer_left(
        redis_url: str, tmp_path: Path) -> None:
    db = tmp_path / "claims.sqlite3"

    async def main() -> None:
        await flushed(redis_url)
        async with Redis.from_url(redis_url, decode_responses=True) as r:
            a = await backend(redis_url, tmp_path, "p1")
            await a.add_batch(Batch("B2", "s1", "cup", 300, 1, "满50减5"))
            a.cue("s1", "link_up", "cup", 0.0)
            await a.outbox.flush()
            await a.consumer.close()  # this process's consumer stops; claims keep being granted into the stream

            granted = [await a.claim(ClaimRequest(f"v{i}:r", f"v{i}", "s1", "B2", 1.0)) for i in range(300)]
            assert all(g.ok for g in granted)
            # two processes read orders and die before writing them: "dead" for good, "p9" comes back
            await r.xreadgroup(GROUP, "dead", {ORDERS: ">"}, count=100)
            await r.xreadgroup(GROUP, "p9", {ORDERS: ">"}, count=100)
            assert (await r.xpending(ORDERS, GROUP))["pending"] == 200

            # p9 restarts (same node name) while the database is locked: it reads its orders but acks none
            locker = sqlite3.connect(db, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            p9 = await backend(redis_url, tmp_path, "p9", idle_timeout=0.5)
            await asyncio.sleep(1.0)
            pending = await r.xpending(ORDERS, GROUP)
            assert pending["pending"] >= 200 and db_rows(db, "SELECT count(*) FROM claims")[0][0] == 0
            locker.execute("ROLLBACK")
            locker.close()
            # p9 replays its own 100, takes over dead's 100 once idle, and reads the 100 never delivered
            await p9.consumer.drain(15)
            assert (await r.xpending(ORDERS, GROUP))["pending"] == 0
            consumers = {c["name"]: c["pending"] for c in await r.xinfo_consumers(ORDERS, GROUP)}
            assert consumers.get("dead", 0) == 0
            await stop(a, p9)
        rows = db_rows(db, "SELECT request_id, left_after, coupon FROM claims WHERE ok = 1 AND batch = 'B2'")
        assert sorted(r[0] for r in rows) == sorted(g.request_id for g in granted)  # rows on disk == granted
        assert sorted(r[1] for r in rows) == list(range(300)) and {r[2] for r in rows} == {"满50减5"}

    asyncio.run(main())


# ---------------------------------------------------------------- two real `linkup serve` processes

SHOW = ONE_SHOW.replace("测试直播", "双机直播").replace("batch: CUP-1, stock: 50,", "batch: DUO-1, stock: 500,")  # its own batch


def start_server(data: Path, redis_url: str, log: Path, port: int = 0) -> tuple[subprocess.Popen, str]:
    """`linkup serve --redis` on `port` (a free one: 0); its stderr (warnings, errors) goes to `log`."""
    script = Path(sys.executable).parent / "linkup"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "studio.cli"]
    port = port or free_port()
    env = {**os.environ, "LINKUP_CLAIM_RATE_ADDRESS": "off"}  # every test client shares 127.0.0.1
    with log.open("w") as errors:
        proc = subprocess.Popen([*cmd, "serve", "--port", str(port), "--data", str(data), "--redis", redis_url],
                                stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
    lines = []
    while not any("buyer token" in ln for ln in lines):
        line = proc.stdout.readline()
        assert line, log.read_text()
        lines.append(line)
    return proc, f"http://127.0.0.1:{port}"


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 15.0, pred=lambda m: True) -> dict:
    """The next message of `kind` (matching `pred`); ConnectionError when the server closes the socket."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await asyncio.wait_for(ws.receive(), max(0.01, deadline - time.monotonic()))
        if frame.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket closed ({frame.type.name})")
        msg = json.loads(frame.data)
        if msg["type"] == kind and pred(msg):
            return msg


def test_two_processes_share_rooms_and_a_2000_viewer_flash_sale(redis_url: str, tmp_path: Path) -> None:
    asyncio.run(flushed(redis_url))
    data = tmp_path / "data"
    logs = [tmp_path / "p1.log", tmp_path / "p2.log"]
    p1, base1 = start_server(data, redis_url, logs[0])
    p2, base2 = start_server(data, redis_url, logs[1])
    tokens = Tokens((data / "secret.key").read_bytes())  # the data folder's key: tokens work on either process
    buyer = {"Authorization": f"Bearer {tokens.issue(Identity('buyer', 'b1', '采销'))}"}

    async def main() -> tuple[set[str], int]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            async with http.post(f"{base1}/api/streams", json={"rundown": SHOW, "id": "duo"}, headers=buyer) as r:
                assert r.status == 201, await r.text()
            for _ in range(100):  # process 2 finds the stream in Redis (it looks twice a second)
                async with http.get(f"{base2}/api/streams/duo") as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.1)
            assert r.status == 200
            async with http.post(f"{base2}/api/streams", json={"rundown": SHOW, "id": "duo"}, headers=buyer) as r:
                assert r.status == 409  # one stream id, cluster-wide
            async with http.post(f"{base2}/api/streams/duo/control", json={"action": "go_live"}, headers=buyer) as r:
                assert r.status == 200  # forwarded: the show runs on process 1, which created the stream

            def ws_url(base: str, i: int) -> str:
                return f"{base}/ws/duo?token={tokens.issue(Identity('viewer', f'v{i}', f'观众{i}'))}"

            a = await http.ws_connect(ws_url(base1, 100_000))
            b = await http.ws_connect(ws_url(base2, 100_001))
            await next_of(a, "hello")
            await next_of(b, "hello")
            await a.send_json({"type": "comment", "text": "一号机的评论"})
            got = await next_of(b, "comments", pred=lambda m: any(c["text"] == "一号机的评论" for c in m["items"]))
            assert got["items"][0]["nickname"] == "观众100000"
            await b.send_json({"type": "comment", "text": "二号机的评论"})
            await next_of(a, "comments", pred=lambda m: any(c["text"] == "二号机的评论" for c in m["items"]))
            await b.send_json({"type": "like", "count": 7})
            assert (await next_of(a, "likes"))["total"] == 7

            claimers = await asyncio.gather(*(http.ws_connect(ws_url((base1, base2)[i % 2], i)) for i in range(2000)))
            await asyncio.gather(*(next_of(ws, "hello", 30) for ws in claimers))
            for _ in range(100):  # viewer counts are summed across processes (exchanged every second)
                async with http.get(f"{base2}/api/streams/duo") as r:
                    details = await r.json()
                if details["stats"]["viewers"] == 2002:
                    break
                await asyncio.sleep(0.1)
            assert details["stats"]["viewers"] == 2002 and details["status"] == "live"

            async with http.post(f"{base2}/api/streams/duo/control", json={"action": "link_up", "product_id": "cup"},
                                 headers=buyer) as r:
                assert r.status == 200
            await asyncio.gather(*(next_of(ws, "event", 30, lambda m: m["event"]["kind"] == "link_up") for ws in (a, b)))

            async def race(i: int, ws: aiohttp.ClientWebSocketResponse) -> dict:
                await ws.send_json({"type": "claim", "request_id": f"r{i}", "batch": "DUO-1"})
                return await next_of(ws, "claim_result", 60)

            results = await asyncio.gather(*(race(i, ws) for i, ws in enumerate(claimers)))
            sold_out = lambda m: m["event"]["kind"] == "deal" and m["event"]["state"] == "sold_out"
            await asyncio.gather(*(next_of(ws, "event", 15, sold_out) for ws in (a, b)))  # the button closes for all
            late = await http.ws_connect(ws_url(base2, 100_002))  # a late joiner on the other process
            hello = await next_of(late, "hello")
            assert "link_up" in [e["kind"] for e in hello["events"]] and hello["stream"]["batches"][0]["left"] == 0
            await late.close()
            granted = {f"v{i}:r{i}" for i, r in enumerate(results) if r["ok"]}
            reasons = Counter(r.get("reason") for r in results if not r["ok"])
            assert len(granted) == 500, reasons  # exactly the stock, across both processes
            assert set(reasons) == {"sold_out"}
            assert {i % 2 for i, r in enumerate(results) if r["ok"]} == {0, 1}  # both processes granted
            async with Redis.from_url(redis_url) as r:  # the consumers drain the order stream into SQLite
                for _ in range(100):
                    if await r.xlen(ORDERS) == 0 and (await r.xpending(ORDERS, GROUP))["pending"] == 0:
                        break
                    await asyncio.sleep(0.1)
                left = int(await r.hget(batch_key("DUO-1"), "left"))
            for ws in [a, b, *claimers]:
                await ws.close()
            return granted, left

    try:
        granted, left = asyncio.run(main())
    finally:
        for proc in (p1, p2):
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in (p1, p2)]
    assert codes == [0, 0]
    for log in logs:  # warnings are fine (a slow socket); errors and tracebacks are not
        assert not re.search(r"ERROR|Traceback", log.read_text()), log.read_text()[-3000:]
    assert left == 0
    rows = db_rows(data / "claims.sqlite3", "SELECT request_id, viewer_id FROM claims WHERE ok = 1 AND batch = 'DUO-1'")
    assert {r[0] for r in rows} == granted and len(rows) == 500  # every acknowledged claim is on disk, once
    assert len({r[1] for r in rows}) == 500  # per-viewer limit 1: no viewer twice
    assert re.search(r"#EXT-X-ENDLIST", (data / "hls" / "duo" / "index.m3u8").read_text())


def test_kill_9_mid_storm_on_redis_loses_no_acknowledged_claim(redis_url: str, tmp_path: Path) -> None:
    """Process 2 is killed with SIGKILL while its viewers claim; restarted (same port, so the same consumer
    name) it replays the orders it had read but not written. Every claim a client saw granted is on disk."""
    asyncio.run(flushed(redis_url))
    data = tmp_path / "data"
    logs = [tmp_path / "p1.log", tmp_path / "p2.log", tmp_path / "p2-again.log"]
    p1, base1 = start_server(data, redis_url, logs[0])
    p2, base2 = start_server(data, redis_url, logs[1])
    procs = [p1, p2]
    tokens = Tokens((data / "secret.key").read_bytes())
    buyer = {"Authorization": f"Bearer {tokens.issue(Identity('buyer', 'b1', '采销'))}"}
    show = SHOW.replace("DUO-1, stock: 500", "KILL-1, stock: 300")

    async def main() -> set[str]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            async with http.post(f"{base1}/api/streams", json={"rundown": show, "id": "kill"}, headers=buyer) as r:
                assert r.status == 201, await r.text()
            async with http.post(f"{base1}/api/streams/kill/control", json={"action": "go_live"}, headers=buyer) as r:
                assert r.status == 200
            for _ in range(300):  # go-live voices the first lines and renders a segment: slow on a busy machine
                async with http.get(f"{base2}/api/streams/kill") as r:
                    if r.status == 200 and (await r.json())["status"] == "live":
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("process 2 never saw the stream go live")
            claimers = await asyncio.gather(*(
                http.ws_connect(f"{(base1, base2)[i % 2]}/ws/kill?token={tokens.issue(Identity('viewer', f'v{i}', 'x'))}")
                for i in range(1000)))
            await asyncio.gather(*(next_of(ws, "hello", 30) for ws in claimers))
            async with http.post(f"{base1}/api/streams/kill/control", json={"action": "link_up", "product_id": "cup"},
                                 headers=buyer) as r:
                assert r.status == 200
            await next_of(claimers[1], "event", 30, lambda m: m["event"]["kind"] == "link_up")
            answered_on_2 = 0

            async def race(i: int, ws: aiohttp.ClientWebSocketResponse) -> dict | None:
                nonlocal answered_on_2
                await asyncio.sleep(i * 0.002)  # a storm spread over two seconds, so the kill lands inside it
                try:
                    await ws.send_json({"type": "claim", "request_id": f"r{i}", "batch": "KILL-1"})
                    result = await next_of(ws, "claim_result", 30)
                except ConnectionError:  # its server died: no answer
                    return None
                if i % 2:
                    answered_on_2 += 1
                    if answered_on_2 == 40:
                        os.kill(p2.pid, signal.SIGKILL)  # mid-storm: most of process 2's claimers are waiting
                return result

            results = await asyncio.gather(*(race(i, ws) for i, ws in enumerate(claimers)))
            acknowledged = {f"v{i}:r{i}" for i, r in enumerate(results) if r is not None and r["ok"]}
            assert any(r is None for r in results[1::2])  # the kill did cut claimers off
            for ws in claimers:
                await ws.close()
            return acknowledged

    try:
        acknowledged = asyncio.run(main())
        assert p2.wait(timeout=10) == -signal.SIGKILL
        p2_again, _ = start_server(data, redis_url, logs[2], port=int(base2.rsplit(":", 1)[1]))
        procs.append(p2_again)

        async def drained() -> int:
            async with Redis.from_url(redis_url) as r:
                for _ in range(150):
                    if await r.xlen(ORDERS) == 0 and (await r.xpending(ORDERS, GROUP))["pending"] == 0:
                        break
                    await asyncio.sleep(0.1)
                return 300 - int(await r.hget(batch_key("KILL-1"), "left"))

        granted_in_redis = asyncio.run(drained())
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    rows = db_rows(data / "claims.sqlite3", "SELECT request_id FROM claims WHERE ok = 1 AND batch = 'KILL-1'")
    on_disk = [r for (r,) in rows]
    assert acknowledged <= set(on_disk)  # every claim a client saw granted is in the database
    assert len(on_disk) == len(set(on_disk)) == granted_in_redis <= 300  # every grant once, never oversold
    for log in (logs[0], logs[2]):
        assert not re.search(r"ERROR|Traceback", log.read_text()), log.read_text()[-3000:]


def test_in_process_studio_on_redis_answers_a_clear_error_when_redis_goes_away(tmp_path: Path) -> None:
    async def main(url: str) -> None:
        studio = Studio(Config(data_dir=tmp_path / "data", voice_cache=tmp_path / "voice", secret=b"k" * 32,
                               redis_url=url, node="solo"))
        async with served(build_app(studio)) as base:
            await studio.add_stream(parse_rundown(yaml.safe_load(ONE_SHOW), "show.yaml"), "s1")
            token = studio.tokens.issue(Identity("viewer", "v1", "小王"))
            async with aiohttp.ClientSession() as http, http.ws_connect(f"{base}/ws/s1?token={token}") as ws:
                await next_of(ws, "hello")
                await ws.send_json({"type": "claim", "request_id": "a", "batch": "CUP-1"})
                assert (await next_of(ws, "claim_result"))["reason"] == "not_open"  # decided in Redis
                async with Redis.from_url(url) as r:
                    await r.shutdown(nosave=True)
                await ws.send_json({"type": "claim", "request_id": "b", "batch": "CUP-1"})
                error = await next_of(ws, "error")
                assert error["message"].startswith("claims are unavailable right now")
                await ws.send_json({"type": "comment", "text": "还在吗"})  # the socket and this process's room live on
                await next_of(ws, "comments", pred=lambda m: m["items"][0]["text"] == "还在吗")

    with redis_server(tmp_path / "redis") as url:
        asyncio.run(main(url))


@pytest.mark.parametrize(("url", "words"), [
    ("http://127.0.0.1:6379", "--redis: expected redis://host:port/db"),
    (f"redis://127.0.0.1:{free_port()}/0", "cannot connect"),
])
def test_a_bad_or_unreachable_redis_is_one_line_naming_the_option(tmp_path: Path, url: str, words: str) -> None:
    script = Path(sys.executable).parent / "linkup"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "studio.cli"]
    done = subprocess.run([*cmd, "serve", "--port", "0", "--data", str(tmp_path), "--redis", url],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("linkup: error: ") and words in lines[0], done.stderr
