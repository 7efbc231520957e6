"""Flash-sale storms against the real server: thousands of websocket viewers race for a batch,
the server is killed with SIGKILL mid-storm and restarted, abusers are throttled, bad tokens refused."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from test_claims_store import rows
from test_server import SHOW, next_of, running

from studio.auth import Identity, Tokens
from studio.ratelimit import ClaimGuard, ClaimLimits, Rate

ROOT = Path(__file__).resolve().parents[1]
SHOW500 = SHOW.replace("stock: 50,", "stock: 500,")
VIEWERS = 2000
CONNECTING = 100  # handshakes at once: the listen backlog is finite


async def connect_all(http: aiohttp.ClientSession, url: str, tokens: list[str]) -> list[aiohttp.ClientWebSocketResponse]:
    gate = asyncio.Semaphore(CONNECTING)

    async def one(token: str) -> aiohttp.ClientWebSocketResponse:
        async with gate:
            ws = await http.ws_connect(f"{url}?token={token}", heartbeat=None, autoping=True)
            await next_of(ws, "hello", timeout=60)
            return ws

    return await asyncio.gather(*(one(t) for t in tokens))


async def claim(ws: aiohttp.ClientWebSocketResponse, request_id: str, batch: str = "CUP-1", timeout: float = 60) -> dict:
    """Send a claim and wait for its answer, skipping the room's traffic cheaply (2,000 of these share the loop)."""
    await ws.send_json({"type": "claim", "request_id": request_id, "batch": batch})
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"socket closed: {msg.type} {msg.data}")
            if msg.data.startswith('{"type":"claim_result"'):
                answer = json.loads(msg.data)
                if answer["request_id"] == request_id:
                    return answer


def test_2000_viewers_race_for_500_coupons_and_everyone_sees_the_sale_end(tmp_path):
    async def main():
        async with running(tmp_path, SHOW500) as (studio, _stream, base, http, _buyer):
            studio.claim_guard = ClaimGuard(ClaimLimits(address=None))  # every test viewer shares 127.0.0.1
            bystander = await http.ws_connect(f"{base}/ws/s1?token={studio.tokens.issue(Identity('viewer', 'b', '路人'))}")
            await next_of(bystander, "hello")
            tokens = [studio.tokens.issue(Identity("viewer", f"v{i}", f"观众{i}")) for i in range(VIEWERS)]
            sockets = await connect_all(http, f"{base}/ws/s1", tokens)
            studio.claims.cue("s1", "link_up", "cup", 0.0)  # what the show's 上链接 frame does (no video here)
            results = await asyncio.gather(*(claim(ws, f"r{i}") for i, ws in enumerate(sockets)))
            # the bystander never claimed: it is told the sale is over, with a handful of throttled updates
            deals = []
            while not deals or deals[-1]["state"] != "sold_out":
                deals.append((await next_of(bystander, "event", pred=lambda m: m["event"]["kind"] == "deal"))["event"])
            again = await asyncio.gather(*(claim(sockets[i], f"r{i}") for i in range(0, VIEWERS, 97)))
            for ws in [*sockets, bystander]:
                await ws.close()
            return results, deals, again

    results, deals, again = asyncio.run(main())
    granted = [i for i, r in enumerate(results) if r["ok"]]
    assert len(granted) == 500
    assert Counter(r.get("reason") for r in results if not r["ok"]) == {"sold_out": 1500}
    assert [a["ok"] for a in again] == [results[i]["ok"] for i in range(0, VIEWERS, 97)]  # same request id, same answer
    db = tmp_path / "data" / "claims.sqlite3"
    assert rows(db, "SELECT count(*), count(DISTINCT viewer_id) FROM claims WHERE ok = 1") == [(500, 500)]
    assert {v for (v,) in rows(db, "SELECT viewer_id FROM claims WHERE ok = 1")} == {f"v{i}" for i in granted}
    assert deals[-1] == {**deals[-1], "state": "sold_out", "left": 0, "claimed": 500}
    assert len(deals) < 60  # throttled: not one update per grant
    assert [d["claimed"] for d in deals] == sorted(d["claimed"] for d in deals)  # never backwards


def test_claims_are_rate_limited_per_viewer_and_per_address_without_binding_the_request(tmp_path):
    async def main():
        async with running(tmp_path) as (studio, _stream, base, http, _buyer):
            studio.claim_guard = ClaimGuard(ClaimLimits(viewer=Rate(20.0, 3), address=None))
            studio.claims.cue("s1", "link_up", "cup", 0.0)
            token = studio.tokens.issue(Identity("viewer", "fast", "手快"))
            ws = await http.ws_connect(f"{base}/ws/s1?token={token}")
            answers = [await claim(ws, f"x{i}", "NOPE") for i in range(3)]
            limited = await claim(ws, "mine")
            assert [a["reason"] for a in answers] == ["unknown_batch"] * 3
            assert limited["reason"] == "rate_limited" and 0 < limited["retry_after"] <= 0.05
            await asyncio.sleep(limited["retry_after"] + 0.01)
            retried = await claim(ws, "mine")  # rate_limited bound nothing: the same id is decided now
            assert (retried["ok"], retried["coupon"]) == (True, "满50减5")
            # the address bucket (4) is shared by every viewer behind it; X-Forwarded-For is not believed
            studio.claim_guard = ClaimGuard(ClaimLimits(viewer=None, address=Rate(0.01, 4)))
            others = [await http.ws_connect(f"{base}/ws/s1?token={studio.tokens.issue(Identity('viewer', f'o{i}', 'x'))}",
                                            headers={"X-Forwarded-For": f"10.0.0.{i}"}) for i in range(3)]
            told = [(await claim(o, f"o{i}-{k}", "NOPE"))["reason"] for k in range(2) for i, o in enumerate(others)]
            assert told.count("rate_limited") == 2 and told.count("unknown_batch") == 4, told
            for w in [ws, *others]:
                await w.close()
            # behind a trusted proxy, X-Forwarded-For names the address
            studio.claim_guard = ClaimGuard(ClaimLimits(viewer=None, address=Rate(0.01, 1), trusted_proxy=True))
            proxied = [await http.ws_connect(f"{base}/ws/s1?token={studio.tokens.issue(Identity('viewer', f'p{i}', 'x'))}",
                                             headers={"X-Forwarded-For": f"6.6.6.6, 10.0.0.{i // 2}"}) for i in range(4)]
            told = [(await claim(p, f"p{i}", "NOPE"))["reason"] for i, p in enumerate(proxied)]
            assert told == ["unknown_batch", "rate_limited", "unknown_batch", "rate_limited"]
            for p in proxied:
                await p.close()
        return rows(tmp_path / "data" / "claims.sqlite3", "SELECT request_id, reason FROM claims ORDER BY request_id")

    stored = asyncio.run(main())
    assert ("fast:mine", None) in stored
    assert not any(reason == "rate_limited" for _, reason in stored)  # never an answer on disk


def test_socket_needs_a_valid_viewer_token_and_batches_belong_to_their_stream(tmp_path):
    other = SHOW.replace("CUP-1", "TEA-1").replace("测试直播", "别的直播")

    async def main():
        async with running(tmp_path) as (studio, _stream, base, http, buyer):
            async with http.post(f"{base}/api/streams", json={"rundown": other, "id": "s2"}, headers=buyer) as r:
                assert r.status == 201
            studio.claims.cue("s2", "link_up", "cup", 0.0)
            good = studio.tokens.issue(Identity("viewer", "v1", "小王"))
            expired = studio.tokens.issue(Identity("viewer", "v1", "小王"), now=time.time() - 8 * 24 * 3600)
            forged = Tokens(b"not the server's key" * 2).issue(Identity("viewer", "v1", "小王"))
            as_buyer = buyer["Authorization"].split()[1]
            refused = {}
            for name, token in (("none", ""), ("expired", expired), ("forged", forged), ("buyer", as_buyer)):
                async with http.get(f"{base}/ws/s1?token={token}", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                    "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
                    refused[name] = (r.status, (await r.json())["error"])
            ws = await http.ws_connect(f"{base}/ws/s1?token={good}")
            answer = await claim(ws, "steal", "TEA-1")  # s2's batch, open, claimed from s1's room
            await ws.close()
            return refused, answer

    refused, answer = asyncio.run(main())
    assert refused["none"][0] == 401 and "token is required" in refused["none"][1]
    assert refused["expired"] == (401, "token expired")
    assert refused["forged"] == (401, "invalid token signature")
    assert refused["buyer"][0] == 403 and "viewer" in refused["buyer"][1]
    assert (answer["ok"], answer["reason"]) == (False, "unknown_batch")


# ------------------------------------------------------------------ kill -9 mid-storm

class Serve:
    """`linkup serve` in a subprocess on a free port, on a data folder that outlives it."""

    def __init__(self, data: Path) -> None:
        self.data = data
        script = Path(sys.executable).parent / "linkup"
        cmd = [str(script)] if script.exists() else [sys.executable, "-m", "studio.cli"]
        env = {**os.environ, "LINKUP_CLAIM_RATE_ADDRESS": "off"}  # every test viewer shares 127.0.0.1
        self.proc = subprocess.Popen([*cmd, "serve", "--port", "0", "--data", str(data)], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines: list[str] = []
        while not any("buyer token" in ln for ln in lines):
            line = self.proc.stdout.readline()
            assert line, f"linkup serve exited with {self.proc.wait()}"
            lines.append(line)
        self.base = next(re.search(r"http://[\d.:]+", ln).group() for ln in lines if "API:" in ln)
        self.buyer = {"Authorization": f"Bearer {next(ln.split()[-1] for ln in lines if 'buyer token' in ln)}"}

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def test_kill_9_mid_storm_loses_no_acknowledged_claim_and_retries_get_the_same_answer(tmp_path):
    data = tmp_path / "data"
    acked: dict[str, dict] = {}  # request id -> the answer a client saw before the kill
    sent: list[str] = []  # every request id sent before the kill
    CLICKS = 5

    async def storm(server: Serve, http: aiohttp.ClientSession, tokens: list[str]) -> None:
        url = f"{server.base}/ws/s1"
        async with http.post(f"{server.base}/api/streams", json={"rundown": SHOW500, "id": "s1"}, headers=server.buyer) as r:
            assert r.status == 201, await r.text()
        sockets = await connect_all(http, url, tokens)
        async with http.post(f"{server.base}/api/streams/s1/control", json={"action": "go_live"}, headers=server.buyer) as r:
            assert r.status == 200
        async with http.post(f"{server.base}/api/streams/s1/control", json={"action": "link_up", "product_id": "cup"},
                             headers=server.buyer) as r:
            assert r.status == 200
        await next_of(sockets[0], "event", timeout=30, pred=lambda m: m["event"]["kind"] == "link_up")

        async def one(i: int, ws: aiohttp.ClientWebSocketResponse) -> None:
            # each viewer keeps clicking (new request ids: r7, r7.1, r7.2 ...) until the server dies, so the
            # kill always lands mid-storm however fast the server answers
            with contextlib.suppress(Exception):  # the server dies under most of them
                for k in range(CLICKS):
                    rid = f"r{i}" if k == 0 else f"r{i}.{k}"
                    sent.append(rid)
                    acked[rid] = await claim(ws, rid, timeout=30)
                    if len(acked) == 250:
                        server.kill()

        await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets)))
        for ws in sockets:
            await ws.close()

    async def after_restart(server: Serve, http: aiohttp.ClientSession, tokens: list[str]) -> tuple[dict, dict]:
        url = f"{server.base}/ws/s1"
        async with http.post(f"{server.base}/api/streams", json={"rundown": SHOW500, "id": "s1"}, headers=server.buyer) as r:
            assert r.status == 201, await r.text()
        sockets = await connect_all(http, url, tokens)
        before = await asyncio.gather(*(claim(ws, f"r{i}") for i, ws in enumerate(sockets)))  # the batch is not open yet
        for action in ("go_live", "link_up"):
            async with http.post(f"{server.base}/api/streams/s1/control", json={"action": action, "product_id": "cup"},
                                 headers=server.buyer) as r:
                assert r.status == 200
        await next_of(sockets[0], "event", timeout=30, pred=lambda m: m["event"]["kind"] == "link_up")
        after = await asyncio.gather(*(claim(ws, f"r{i}") for i, ws in enumerate(sockets)))
        for ws in sockets:
            await ws.close()
        return {f"r{i}": a for i, a in enumerate(before)}, {f"r{i}": a for i, a in enumerate(after)}

    async def main() -> tuple[dict, dict, dict]:
        first = Serve(data)
        tokens = [Tokens((data / "secret.key").read_bytes()).issue(Identity("viewer", f"v{i}", f"观众{i}"))
                  for i in range(VIEWERS)]
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                await storm(first, http, tokens)
        finally:
            first.stop()
        assert first.proc.returncode == -signal.SIGKILL, "the storm ended before the kill"
        on_disk = stored()  # what the restarted server will find
        second = Serve(data)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                before, after = await after_restart(second, http, tokens)
        finally:
            second.stop()
        return on_disk, before, after

    def stored() -> dict[str, tuple[bool, str | None]]:
        """Answers on disk, by the client's request id (the server scopes ids as "<viewer>:<id>")."""
        return {rid.split(":", 1)[1]: (bool(ok), reason)
                for rid, ok, reason in rows(data / "claims.sqlite3", "SELECT request_id, ok, reason FROM claims")}

    def told(answer: dict) -> tuple[bool, str | None]:
        return answer["ok"], answer.get("reason")

    on_disk, before, after = asyncio.run(main())
    assert 250 <= len(acked) < len(sent)  # the kill cut claims off in flight
    assert sum(ok for ok, _ in on_disk.values()) <= 500
    for rid, answer in acked.items():  # every acknowledged answer was on disk when the server died
        assert on_disk[rid] == told(answer), rid
    for rid in before:  # after the restart, before the link-up: what is on disk is repeated, the rest is not decided
        assert told(before[rid]) == on_disk.get(rid, (False, "not_open")), rid
    for rid in after:  # after the link-up: the same answers again, and the rest decided now
        if rid in on_disk:
            assert told(after[rid]) == on_disk[rid], rid
    final = {rid: answer for rid, answer in stored().items() if "." not in rid}  # the first clicks' ids
    assert {rid: told(a) for rid, a in after.items()} == final  # every answer given is the one on disk
    assert rows(data / "claims.sqlite3", "SELECT count(*), count(DISTINCT viewer_id) FROM claims WHERE ok = 1") == [(500, 500)]
    assert rows(data / "claims.sqlite3", "PRAGMA integrity_check") == [("ok",)]


def test_sold_out_shuts_the_claim_button_on_a_page_that_never_claimed(tmp_path):
    from playwright.async_api import async_playwright
    from test_pages import CHROMIUM, FLAGS

    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            async with http.post(f"{base}/api/streams/s1/control", json={"action": "go_live"}, headers=buyer) as r:
                assert r.status == 200
            await stream.show.wait_first_segment(15)
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = await browser.new_page()
                await page.goto(f"{base}/watch/s1")
                await page.wait_for_function("document.getElementById('player').currentTime > 0.5", timeout=20_000)
                async with http.post(f"{base}/api/streams/s1/control", json={"action": "link_up", "product_id": "cup"},
                                     headers=buyer) as r:
                    assert r.status == 200
                await page.wait_for_selector("#claim:not([disabled])", timeout=15_000)  # 上链接 reached this player
                tokens = [studio.tokens.issue(Identity("viewer", f"v{i}", f"观众{i}")) for i in range(60)]
                sockets = await connect_all(http, f"{base}/ws/s1", tokens)
                results = await asyncio.gather(*(claim(ws, f"r{i}") for i, ws in enumerate(sockets)))
                assert sum(r["ok"] for r in results) == 50
                # sold out: the page that never claimed shuts its button at once
                await page.wait_for_function("document.getElementById('claim').disabled", timeout=5_000)
                assert await page.inner_text("#claim") == "已抢光"
                await page.wait_for_function("document.querySelector('.deal-left').textContent.includes('50 人已抢')",
                                             timeout=5_000)
                # a viewer arriving after the sale never sees an open button
                late = await browser.new_page()
                await late.goto(f"{base}/watch/s1")
                await late.wait_for_selector("#deal:not([hidden])", timeout=20_000)
                assert await late.evaluate("document.getElementById('claim').disabled")
                assert await late.inner_text("#claim") == "已抢光"
                await page.screenshot(path=str(tmp_path / "sold_out.png"))
                await browser.close()
                for ws in sockets:
                    await ws.close()

    asyncio.run(main())
