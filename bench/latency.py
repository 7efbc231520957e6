"""Live latency: go-live to first playable segment, buyer's 上链接 to the card decodable in HLS,
and the skew between an event's media time and the first frame that shows it.

Runs a real server in-process on loopback with the demo rundown, drives it over HTTP and the viewer
websocket, fetches the HLS segments as a player would and decodes them with PyAV. Bars: <= 3 s,
<= 3 s, <= 100 ms (the skew is measured on the decoded frames, so it is what every viewer sees).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import av
import numpy as np
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from script_gen.rundown import load_rundown
from studio.auth import Identity
from studio.render import DEMO_RUNDOWN
from studio.server import Config, Studio, build_app

CARD = (slice(100, 520), slice(880, 1245))  # the card panel at 720p


async def fetch(http: aiohttp.ClientSession, url: str) -> bytes | None:
    async with http.get(url) as r:
        return await r.read() if r.status == 200 else None


def segments(playlist: str) -> list[str]:
    return [ln for ln in playlist.splitlines() if ln and not ln.startswith("#")]


def decode(init: bytes, segment: bytes) -> list[tuple[float, np.ndarray]]:
    with av.open(io.BytesIO(init + segment), format="mp4") as c:
        return [(float(f.time), f.to_ndarray(format="bgr24")[CARD]) for f in c.decode(video=0)]


async def main(rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(Config(data_dir=Path(tmp) / "data", voice_cache=Path(tmp) / "voice"))
        runner = web.AppRunner(build_app(studio))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        stream = await studio.add_stream(load_rundown(DEMO_RUNDOWN), "demo")
        auth = {"Authorization": "Bearer " + studio.tokens.issue(Identity("buyer", "b", "bench"))}
        hls = f"{base}/hls/demo/"
        try:
            async with aiohttp.ClientSession() as http:
                t0 = time.perf_counter()
                async with http.post(f"{base}/api/streams/demo/control", json={"action": "go_live"}, headers=auth) as r:
                    assert r.status == 200, await r.text()
                while True:  # a player's view: playlist, init segment, first media segment, decodable
                    text = await fetch(http, hls + "index.m3u8")
                    if text and segments(text.decode()):
                        init = await fetch(http, hls + "init.mp4")
                        first = await fetch(http, hls + segments(text.decode())[0])
                        if init and first and decode(init, first):
                            break
                    await asyncio.sleep(0.02)
                go_live_s = time.perf_counter() - t0

                async with http.post(f"{base}/api/viewers", json={"nickname": "bench"}) as r:
                    token = (await r.json())["token"]
                ws = await http.ws_connect(f"{base}/ws/demo?token={token}")
                link_latency, skews = [], []
                for i in range(rounds):
                    await asyncio.sleep(2.5)
                    product = stream.rundown.products[i % len(stream.rundown.products)].id
                    seen = set(segments((await fetch(http, hls + "index.m3u8")).decode()))
                    t1 = time.perf_counter()
                    async with http.post(f"{base}/api/streams/demo/control",
                                         json={"action": "link_up", "product_id": product}, headers=auth) as r:
                        assert r.status == 200
                    while True:
                        msg = await ws.receive_json()
                        if msg["type"] == "event" and msg["event"]["kind"] == "link_up":
                            event_time = msg["event"]["media_time"]
                            break
                    shown = None
                    while shown is None:
                        await asyncio.sleep(0.02)
                        for name in segments((await fetch(http, hls + "index.m3u8")).decode()):
                            if name in seen:
                                continue
                            seen.add(name)
                            frames = decode(init, await fetch(http, hls + name))
                            for (_, a), (t, b) in zip(frames, frames[1:]):
                                if t >= event_time - 0.5 and np.abs(b.astype(np.int16) - a).mean() > 3:
                                    shown = t
                                    break
                            if shown is not None:
                                break
                    link_latency.append(time.perf_counter() - t1)
                    skews.append(abs(shown - event_time) * 1000)
                await ws.close()
        finally:
            await runner.cleanup()
    return {
        "go_live_to_first_segment_s": round(go_live_s, 2),
        "link_up_to_card_in_hls_s": {"median": round(float(np.median(link_latency)), 2), "max": round(max(link_latency), 2)},
        "event_to_card_skew_ms": {"median": round(float(np.median(skews)), 1), "max": round(max(skews), 1)},
        "rounds": rounds,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 rounds")
    args = ap.parse_args()
    result = asyncio.run(main(2 if args.quick else args.rounds))
    print(f"go-live -> first playable segment {result['go_live_to_first_segment_s']} s; "
          f"上链接 -> card decodable in HLS {result['link_up_to_card_in_hls_s']} s; "
          f"event -> card skew {result['event_to_card_skew_ms']} ms")
    print(json.dumps(result, ensure_ascii=False))
