"""The live studio server, driven the way its users drive it: HTTP, websockets, HLS, a real process."""
from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import av
import numpy as np
import pytest
import yaml

from script_gen.rundown import parse_rundown
from studio.auth import Identity
from studio.server import Config, Studio, build_app
from tests.processes import claims_writers, gone
from tests.serving import served

SHOW = """
title: 测试直播
host: {avatar: default, voice: {engine: offline}}
products:
  - id: cup
    name: 暖言 保温杯
    category: 家居
    price: 99
    live_price: 59
    selling_points: [316不锈钢内胆]
    stock: 1000
    coupon: {amount: 5, min_spend: 50}
segments:
  - product: cup
    script: [大家好，这款保温杯今天只要¥59！, 保温十二个小时，冬天也不怕。, 喜欢的宝宝拍1号链接。]
    flash_sale: {batch: CUP-1, stock: 50, per_viewer_limit: 1, countdown_after: 3}
"""


@contextlib.asynccontextmanager
async def running(tmp_path: Path, rundown_text: str = SHOW):
    studio = Studio(Config(data_dir=tmp_path / "data", voice_cache=tmp_path / "voice"))
    async with served(build_app(studio)) as base:
        stream = await studio.add_stream(parse_rundown(yaml.safe_load(rundown_text), "show.yaml"), "s1")
        buyer = studio.tokens.issue(Identity("buyer", "b1", "采销"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:  # 200 open sockets
            yield studio, stream, base, http, {"Authorization": f"Bearer {buyer}"}


async def viewer(http: aiohttp.ClientSession, base: str, nickname: str) -> str:
    async with http.post(f"{base}/api/viewers", json={"nickname": nickname}) as r:
        assert r.status == 200
        return (await r.json())["token"]


async def next_of(ws, kind: str, timeout: float = 10.0, pred=lambda m: True, skipped: list | None = None) -> dict:
    """The next message of `kind` (matching `pred`); the others are dropped, or kept in `skipped`."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await asyncio.wait_for(ws.receive_json(), max(0.01, deadline - time.monotonic()))
        if msg["type"] == kind and pred(msg):
            return msg
        if skipped is not None:
            skipped.append(msg)


def test_api_lists_streams_and_answers_bad_input_with_json_errors(tmp_path):
    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            async with http.get(f"{base}/api/streams") as r:
                listed = await r.json()
            assert [(s["id"], s["status"]) for s in listed] == [("s1", "scheduled")]
            assert {"id", "title", "status", "hls_url", "ws_url"} <= set(listed[0])
            token = await viewer(http, base, "小王")
            cases = [
                ("post", "/api/viewers", {}, None, 400, "missing field: nickname"),
                ("post", "/api/viewers", {"nickname": 5}, None, 400, "nickname: must be str"),
                ("post", "/api/viewers", {"nickname": "a", "x": 1}, None, 400, "unknown field: x"),
                ("post", "/api/streams/s1/control", {"action": "pause"}, None, 401, "token"),
                ("post", "/api/streams/s1/control", {"action": "pause"}, {"Authorization": f"Bearer {token}"}, 403, "buyer"),
                ("post", "/api/streams/s1/control", {"action": "dance"}, buyer, 400, "action"),
                ("post", "/api/streams/s1/control", {"action": "pause"}, buyer, 409, "not live"),
                ("post", "/api/streams/s1/control", {"action": "link_up", "product_id": "nope"}, buyer, 400, "product_id"),
                ("post", "/api/streams", {"rundown": SHOW.replace("live_price: 59", "live_price: abc")}, buyer, 400,
                 "rundown: products[0].live_price"),
                ("post", "/api/streams", {"rundown": "a: [1"}, buyer, 400, "not valid YAML"),
                ("post", "/api/streams", {"rundown": SHOW, "brand_id": " x"}, buyer, 400, "brand_id"),
                ("post", "/api/streams", {"rundown": SHOW, "brand_id": "b" * 65}, buyer, 400, "brand_id"),
                ("get", "/api/streams/nope", None, None, 404, "nope"),
                ("get", "/api/nothing-here", None, None, 404, "Not Found"),
            ]
            for method, path, body, headers, status, words in cases:
                async with http.request(method, base + path, json=body, headers=headers) as r:
                    answer = await r.json()
                    assert (r.status, words in answer["error"]) == (status, True), (path, body, answer)
            async with http.post(f"{base}/api/viewers", data=b"{not json", headers={"Content-Type": "application/json"}) as r:
                assert r.status == 400 and "JSON" in (await r.json())["error"]
            async with http.get(f"{base}/api/streams/s1/control") as r:
                assert r.status == 405 and "error" in await r.json()

    asyncio.run(main())


def test_comment_round_trip_between_two_viewers(tmp_path):
    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            a = await http.ws_connect(f"{base}/ws/s1?token={await viewer(http, base, '小王')}")
            b = await http.ws_connect(f"{base}/ws/s1?token={await viewer(http, base, '小李')}")
            hello = await next_of(b, "hello")
            assert hello["viewer"]["nickname"] == "小李" and hello["stream"]["id"] == "s1"
            await a.send_json({"type": "comment", "text": "多少钱？<b>真的吗</b>"})
            got = await next_of(b, "comments")
            assert got["items"][0]["text"] == "多少钱？<b>真的吗</b>" and got["items"][0]["nickname"] == "小王"
            await a.send_json({"type": "comment", "text": "x" * 101})
            assert "太长" in (await next_of(a, "error"))["message"]
            await a.send_json({"type": "bogus"})
            assert "type" in (await next_of(a, "error"))["message"]
            for bad in ("{not json", "[1, 2]", '{"type": "claim", "request_id": 5, "batch": "CUP-1"}'):
                await a.send_str(bad)
                said = (await next_of(a, "error"))["message"]
                assert ("JSON" in said) if bad.startswith("{not") else ("type" in said or "request_id" in said), (bad, said)
            for odd in ('引号"和\\反斜杠', "a\nb", "uuid-4f1c:1.2~x/y"):  # answers quote any id the client chose
                await a.send_json({"type": "claim", "request_id": odd, "batch": "CUP-1"})
                answer = await next_of(a, "claim_result")
                assert (answer["request_id"], answer["ok"], answer["reason"]) == (odd, False, "not_open"), answer
            assert not a.closed  # bad input is answered, never a reason to drop the viewer
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{base}/ws/s1?token=forged")
            assert refused.value.status == 401
            await a.close()
            await b.close()

    asyncio.run(main())


def card_change_frames(playlist: Path) -> tuple[list[float], np.ndarray]:
    """Decode the HLS stream: each frame's media time and how much the card panel changed from the frame before."""
    times, diffs, last = [], [], None
    with av.open(str(playlist)) as c:
        for frame in c.decode(video=0):
            panel = frame.to_ndarray(format="bgr24")[100:520, 880:1245].astype(np.int16)
            times.append(float(frame.time))
            diffs.append(0.0 if last is None else float(np.abs(panel - last).mean()))
            last = panel
    return times, np.array(diffs)


def test_live_show_link_up_claims_and_hls(tmp_path):
    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            async with http.post(f"{base}/api/streams/s1/control", json={"action": "go_live"}, headers=buyer) as r:
                assert r.status == 200 and (await r.json())["status"] == "live"
            await stream.show.wait_first_segment(15)
            tokens = [await viewer(http, base, f"观众{i}") for i in range(200)]
            sockets = [await http.ws_connect(f"{base}/ws/s1?token={t}") for t in tokens]
            for ws in sockets:
                await next_of(ws, "hello")
            # too early: the batch opens with the link-up event, not before
            await sockets[0].send_json({"type": "claim", "request_id": "early", "batch": "CUP-1"})
            early = await next_of(sockets[0], "claim_result")
            assert (early["ok"], early["reason"]) == (False, "not_open")

            async with http.post(f"{base}/api/streams/s1/control", json={"action": "link_up", "product_id": "cup"},
                                 headers=buyer) as r:
                assert r.status == 200
            link = (await next_of(sockets[1], "event", pred=lambda m: m["event"]["kind"] == "link_up"))["event"]
            assert link["product_id"] == "cup" and "CUP-1" in link["batches"]

            seen: list[dict] = []

            async def race(i: int, ws) -> dict:
                await ws.send_json({"type": "claim", "request_id": f"r{i}", "batch": "CUP-1"})
                return await next_of(ws, "claim_result", timeout=20, skipped=seen)

            results = await asyncio.gather(*(race(i, ws) for i, ws in enumerate(sockets)))
            granted = [r for r in results if r["ok"]]
            assert len(granted) == 50, {r.get("reason") for r in results}  # stock 50: never oversold
            assert {r["reason"] for r in results if not r["ok"]} == {"sold_out"}
            toasts = {m["event"]["text"] for m in seen if m["type"] == "event" and m["event"]["kind"] == "toast"}
            assert toasts == {"观** 抢到了 满50减5"}  # throttled: one toast for the burst, nickname masked
            again = await race(0, sockets[0])  # a retry with the same request id gets the same answer
            assert again["ok"] == results[0]["ok"]
            await asyncio.sleep(3)  # let the link-up reach a published segment
            async with http.get(f"{base}/api/streams/s1") as r:
                details = await r.json()
            assert details["batches"][0]["left"] == 0 and details["media_epoch"] > 1.7e9
            async with http.get(base + details["hls_url"]) as r:
                playlist = await r.text()
            assert "#EXT-X-PROGRAM-DATE-TIME" in playlist and "#EXT-X-MAP" in playlist
            for ws in sockets:
                await ws.close()
            return link

    link = asyncio.run(main())
    rows = sqlite3.connect(tmp_path / "data" / "claims.sqlite3").execute(
        "select count(*) from claims where ok = 1").fetchone()[0]
    assert rows == 50  # every granted claim is on disk
    times, diffs = card_change_frames(tmp_path / "data" / "hls" / "s1" / "index.m3u8")
    near = [i for i, t in enumerate(times) if t >= link["media_time"] - 0.5]
    burst = next(i for i in near if diffs[i] > 3)  # the card panel is still until the burst
    seen = [(round(times[i], 3), round(diffs[i], 1)) for i in near[:20]]
    assert abs(times[burst] - link["media_time"]) <= 1 / 25 + 1e-6, seen  # events follow the video, within a frame


def test_demo_process_serves_and_stops_cleanly_on_sigterm(tmp_path):
    script = Path(sys.executable).parent / "linkup"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "studio.cli"]
    # as the README runs it: the default data folder, relative to where it is started
    proc = subprocess.Popen([*cmd, "demo", "--port", "0"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        lines = []
        while not any("buyer token" in ln for ln in lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
        watch = next(re.search(r"http://\S+/watch/demo", ln).group() for ln in lines if "/watch/" in ln)
        base = watch.rsplit("/watch/", 1)[0]

        async def check():
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/api/streams") as r:
                    assert [s["status"] for s in await r.json()] == ["live"]
                async with http.get(watch) as r:
                    assert r.status == 200 and "hls.min.js" in await r.text()
                for _ in range(150):
                    async with http.get(f"{base}/hls/demo/index.m3u8") as r:
                        if r.status == 200:
                            return
                    await asyncio.sleep(0.1)
                raise AssertionError("no playlist within 15 s")

        asyncio.run(check())
        (writer,) = claims_writers(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert gone(writer), "the claims writer outlived the server"
        data = tmp_path / "linkup-data"
        assert "#EXT-X-ENDLIST" in (data / "hls" / "demo" / "index.m3u8").read_text()
        assert sqlite3.connect(data / "claims.sqlite3").execute("SELECT count(*) FROM batches").fetchone()[0] > 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_scheduled_stream_takes_reservations_then_goes_live_by_itself(tmp_path):
    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            starts = time.time() + 2.5
            later = SHOW.replace("CUP-1", "CUP-2")
            async with http.post(f"{base}/api/streams", json={"rundown": later, "starts_at": starts, "id": "later"},
                                 headers=buyer) as r:
                assert r.status == 201, await r.text()
                assert (await r.json())["status"] == "scheduled"
            token = await viewer(http, base, "小王")
            ws = await http.ws_connect(f"{base}/ws/later?token={token}")
            await next_of(ws, "hello")
            for _ in range(2):  # idempotent per viewer
                async with http.post(f"{base}/api/streams/later/reserve", headers={"Authorization": f"Bearer {token}"}) as r:
                    assert (r.status, (await r.json())["reservations"]) == (200, 1)
            async with http.post(f"{base}/api/streams/later/reserve", headers=buyer) as r:
                assert r.status == 403
            async with http.post(f"{base}/api/streams", json={"rundown": SHOW, "id": "again"}, headers=buyer) as r:
                assert r.status == 409 and "CUP-1" in (await r.json())["error"]  # batch ids are not shared
            went_live = await next_of(ws, "status", timeout=15)
            assert went_live["status"] == "live" and time.time() >= starts
            async with http.get(f"{base}/api/streams") as r:
                assert {s["id"]: s["status"] for s in await r.json()} == {"s1": "scheduled", "later": "live"}
            async with http.post(f"{base}/api/streams/later/reserve", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 409
            await ws.close()
        # reservations are rows on disk
        rows = sqlite3.connect(tmp_path / "data" / "reservations.sqlite3").execute(
            "select count(*) from reservations where stream_id = 'later'").fetchone()[0]
        assert rows == 1

    asyncio.run(main())


def test_host_answers_questions_and_merges_repeats(tmp_path):
    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            async with http.post(f"{base}/api/streams/s1/control", json={"action": "go_live"}, headers=buyer) as r:
                assert r.status == 200
            await stream.show.wait_first_segment(15)
            a = await http.ws_connect(f"{base}/ws/s1?token={await viewer(http, base, '小王')}")
            b = await http.ws_connect(f"{base}/ws/s1?token={await viewer(http, base, '小李')}")
            await next_of(a, "hello")
            await next_of(b, "hello")
            asked = time.monotonic()
            await a.send_json({"type": "comment", "text": "这个多少钱？"})
            await b.send_json({"type": "comment", "text": "多少钱呀"})  # the same question: merged
            began = await next_of(a, "event", timeout=15, pred=lambda m: m["event"]["kind"] == "gesture")
            assert began["event"]["product_id"] == "cup" and time.monotonic() - asked < 15
            said = began["event"]["text"]
            assert said.startswith("@小王") and "¥59" in said, said  # answered from the data
            with pytest.raises(asyncio.TimeoutError):  # no second answer for the merged question
                await next_of(a, "event", timeout=2, pred=lambda m: m["event"]["kind"] == "gesture")
            await a.close()
            await b.close()

    asyncio.run(main())


def test_a_script_with_ad_law_findings_needs_an_override_to_go_live(tmp_path, caplog):
    bad = SHOW.replace("保温十二个小时，冬天也不怕。", "全网最低价，保温十二个小时。")

    async def main():
        async with running(tmp_path, bad) as (studio, stream, base, http, buyer):
            go = {"action": "go_live"}
            async with http.post(f"{base}/api/streams/s1/control", json=go, headers=buyer) as r:
                answer = await r.json()
                assert r.status == 409 and "全网最低价" in answer["error"]
                assert answer["findings"][0]["rule"] == "absolute"
            assert stream.status == "scheduled"
            with caplog.at_level("WARNING", logger="linkup.server"):
                async with http.post(f"{base}/api/streams/s1/control", json={**go, "override_reason": "法务已确认"},
                                     headers=buyer) as r:
                    assert r.status == 200 and (await r.json())["status"] == "live"
            assert "法务已确认" in caplog.text and "全网最低价" in caplog.text
            async with http.post(f"{base}/api/streams/s1/control", json={"action": "say", "text": "国家级品质"},
                                 headers=buyer) as r:
                assert r.status == 409  # a buyer's own line is checked too

    asyncio.run(main())


def test_preflight_voices_every_line_before_the_show_and_reports_who_spoke(tmp_path):
    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            token = await viewer(http, base, "小王")
            async with http.post(f"{base}/api/streams/s1/preflight", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 403
            async with http.post(f"{base}/api/streams/s1/preflight", headers=buyer) as r:
                assert r.status == 202
                total = (await r.json())["total"]
            for _ in range(200):
                async with http.get(f"{base}/api/streams/s1/preflight", headers=buyer) as r:
                    state = await r.json()
                if state["done"]:
                    break
                await asyncio.sleep(0.05)
            assert state["done"] and state["voiced"] == total == len(state["lines"]) >= 4
            assert {line["engine"] for line in state["lines"]} == {"offline"}
            assert not any(line["fell_back"] for line in state["lines"])
            assert any("AI数字人主播" in line["text"] for line in state["lines"])  # what the show will say
            # the show then starts warm: its lines are in the voice cache
            assert len(list((tmp_path / "voice").rglob("*.npz"))) >= total

    asyncio.run(main())


def test_nicknames_said_on_air_are_masked_and_late_joiners_get_recent_events_only(tmp_path):
    from studio.backend import EVENTS_KEPT
    from studio.live_timeline import LiveEvent

    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            async with http.post(f"{base}/api/viewers", json={"nickname": "全网最低价小店"}) as r:
                assert (await r.json())["nickname"] == "*****小店"  # the host would read it aloud
            async with http.post(f"{base}/api/viewers", json={"nickname": "加微信"}) as r:
                assert (await r.json())["nickname"] == "观众"
            for n in range(EVENTS_KEPT + 50):  # a show that loops for hours
                studio._on_event(stream, LiveEvent("gesture", n, "cup", text=f"line {n}"))
            token = await viewer(http, base, "小王")
            async with http.ws_connect(f"{base}/ws/s1?token={token}") as ws:
                hello = await next_of(ws, "hello")
            texts = [e["text"] for e in hello["events"]]
            assert len(texts) == EVENTS_KEPT and texts[-1] == f"line {EVENTS_KEPT + 49}"

    asyncio.run(main())


def test_control_for_a_product_the_show_cannot_reach_is_a_clear_error(tmp_path):
    two = SHOW.replace("""segments:""", """  - id: pot
    name: 汤锅
    category: 家居
    price: 199
    live_price: 149
    selling_points: [加厚锅底]
    stock: 10
segments:""")

    async def main():
        async with running(tmp_path, two) as (studio, stream, base, http, buyer):
            async with http.post(f"{base}/api/streams/s1/control", json={"action": "go_live"}, headers=buyer) as r:
                assert r.status == 200
            for action in ("skip", "link_up"):  # pot is in the rundown but in no segment
                async with http.post(f"{base}/api/streams/s1/control", json={"action": action, "product_id": "pot"},
                                     headers=buyer) as r:
                    assert r.status == 400, (action, await r.text())
                    assert "pot" in (await r.json())["error"]
            async with http.post(f"{base}/api/streams/s1/control", json={"action": "end"}, headers=buyer) as r:
                assert r.status == 200

    asyncio.run(main())
