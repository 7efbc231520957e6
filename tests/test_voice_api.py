"""Brand voices through the studio: the voice API as a brand drives it, and a live show outliving its voice server."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import aiohttp
import av
import numpy as np
import pytest
from speech_server import TONE_HZ, SpeechServer, dominant_hz, tone_bursts, wav
from test_brand import brand_server as studio_server

from avatar.voice.audio import decode_audio
from avatar.voice.profile import parse_profile
from script_gen.rundown import load_rundown
from studio.clock import SAMPLE_RATE
from studio.live import LiveShow
from studio.render import DEMO_RUNDOWN
from studio.server import Config, Studio
from studio.voice_api import load_voice_profile

FAST = {"tone_ms": 80, "gap_ms": 20}  # a fast talker: short lines keep the live test short


@pytest.fixture
def server():
    s = SpeechServer(**FAST)
    yield s
    s.close()


async def call(http: aiohttp.ClientSession, method: str, url: str, **kw) -> tuple[int, object]:
    async with http.request(method, url, **kw) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else await r.read())


def upload_form(text: str, data: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("text", text)
    form.add_field("file", data, filename="line.wav", content_type="audio/wav")
    return form


async def preview(http, base, headers, text: str) -> tuple[int, str, np.ndarray]:
    async with http.post(f"{base}/api/voice/preview", headers=headers, json={"text": text}) as r:
        assert r.status == 200, await r.text()
        assert r.content_type == "audio/wav"
        pcm, rate = decode_audio(await r.read())
        return rate, r.headers["X-Voice-Engine"], pcm


RECORDED = "欢迎来到直播间"


def test_brand_sets_its_voice_uploads_a_line_and_hears_previews(tmp_path, server):
    async def main():
        async with studio_server(tmp_path / "data") as (base, http, auth):
            brand = auth("brand", "acme")
            status, profile = await call(http, "GET", f"{base}/api/voice", headers=brand)
            assert status == 200 and profile["engine"] == "offline" and "recordings" not in profile

            rate, engine, pcm = await preview(http, base, brand, "大家好")
            assert (rate, engine) == (SAMPLE_RATE, "offline") and pcm.size > SAMPLE_RATE // 2

            # the recording: 1 s of 440 Hz at 44.1 kHz, as a phone might send it
            t = np.arange(44_100) / 44_100
            status, answer = await call(http, "PUT", f"{base}/api/voice/lines", headers=brand,
                                        data=upload_form(RECORDED, wav((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), 44_100)))
            assert status == 201 and answer["text"] == RECORDED and 0.9 <= answer["seconds"] <= 1.0

            status, profile = await call(http, "PUT", f"{base}/api/voice", headers=brand, json={
                "engine": "recorded", "fallback": "http", "url": server.url, "model": "cosyvoice", "name": "ceo",
                "rate": 20, "recordings": "/etc"})
            assert status == 200 and profile["engine"] == "recorded" and "recordings" not in profile
            stored = load_voice_profile(tmp_path / "data", "acme")
            assert stored.recordings == str(tmp_path / "data" / "voices" / "acme" / "lines")
            status, profile = await call(http, "GET", f"{base}/api/voice", headers=brand)
            assert (profile["fallback"], profile["url"], profile["rate"]) == ("http", server.url, 20)

            rate, engine, pcm = await preview(http, base, brand, "欢迎来到，直播间！")  # punctuation does not matter
            assert engine == "recorded" and abs(dominant_hz(pcm) - 440) < 5
            rate, engine, pcm = await preview(http, base, brand, "这款耳机降噪很强")
            assert engine == "http" and abs(dominant_hz(pcm) - TONE_HZ) < 5
            assert server.requests[-1] == {"model": "cosyvoice", "input": "这款耳机降噪很强", "voice": "ceo",
                                           "response_format": "wav", "speed": 1.2}
            server.stop()
            rate, engine, pcm = await preview(http, base, brand, "这款耳机降噪很强")
            assert engine == "offline" and np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 1000

            status, _ = await call(http, "DELETE", f"{base}/api/voice/lines", headers=brand, params={"text": RECORDED})
            assert status == 200
            status, answer = await call(http, "DELETE", f"{base}/api/voice/lines", headers=brand, params={"text": RECORDED})
            assert (status, answer) == (404, {"error": "no recording of this line"})
            _, engine, _ = await preview(http, base, brand, RECORDED)
            assert engine == "offline"

            other = auth("brand", "other")
            status, profile = await call(http, "GET", f"{base}/api/voice", headers=other)
            assert profile["engine"] == "offline"

    asyncio.run(main())


def test_bad_profiles_and_uploads_are_refused_with_the_reason(tmp_path):
    async def main():
        async with studio_server(tmp_path / "data") as (base, http, auth):
            brand = auth("brand", "acme")
            status, answer = await call(http, "PUT", f"{base}/api/voice", headers=brand, json={"rate": 500})
            assert (status, answer) == (400, {"error": "rate: must be a whole number from -50 to 100, got 500"})
            status, answer = await call(http, "PUT", f"{base}/api/voice", headers=brand, json={"engine": "http"})
            assert status == 400 and answer["error"].startswith("url: the http engine needs")
            status, answer = await call(http, "PUT", f"{base}/api/voice", headers=brand, json=[1])
            assert status == 400 and answer["error"].startswith("body:")

            lines = f"{base}/api/voice/lines"
            refusals = {
                b"": "the file is empty",
                b"RIFF\x00\x00not audio at all" * 50: "not an audio file we can read",
                wav(np.zeros(SAMPLE_RATE, np.int16), SAMPLE_RATE): "the recording is silent",
                b"\x00" * (10 * 2**20 + 1): "the file is over 10 MB; the limit is 10 MB",
            }
            for data, message in refusals.items():
                status, answer = await call(http, "PUT", lines, headers=brand, data=upload_form("大家好", data))
                assert status == 400 and answer["error"].startswith(message), answer
            status, answer = await call(http, "PUT", lines, headers=brand, data=upload_form("！？", wav(tone_bursts(5, SAMPLE_RATE, **FAST), SAMPLE_RATE)))
            assert (status, answer) == (400, {"error": "the line has no words to record"})
            status, answer = await call(http, "PUT", lines, headers=brand, json={"text": "大家好"})
            assert status == 400 and "multipart" in answer["error"]
            assert not list((tmp_path / "data" / "voices" / "acme" / "lines").glob("*"))  # nothing half-stored
            status, answer = await call(http, "POST", f"{base}/api/voice/preview", headers=brand, json={"text": " "})
            assert status == 400 and answer["error"].startswith("text:")

    asyncio.run(main())


def test_only_brands_reach_the_voice_api(tmp_path):
    async def main():
        async with studio_server(tmp_path / "data") as (base, http, auth):
            routes = [("GET", "/api/voice", {}), ("PUT", "/api/voice", {"json": {}}),
                      ("PUT", "/api/voice/lines", {"data": upload_form("大家好", b"x")}),
                      ("DELETE", "/api/voice/lines?text=hi", {}), ("POST", "/api/voice/preview", {"json": {"text": "hi"}})]
            for method, path, kw in routes:
                status, answer = await call(http, method, base + path, **kw)
                assert status == 401 and "token" in answer["error"]
                for role in ("viewer", "buyer"):
                    status, answer = await call(http, method, base + path, headers=auth(role, "x"), **kw)
                    assert (status, answer) == (403, {"error": f"this needs a brand token, not a {role} token"})
            assert not (tmp_path / "data" / "voices").exists()

    asyncio.run(main())


# --- live failover ----------------------------------------------------------------


def silent_runs_s(pcm: np.ndarray, window: int = SAMPLE_RATE // 10) -> list[float]:
    """Lengths of the runs of silent 100 ms windows (RMS under -50 dBFS) between the first and last voiced one."""
    x = pcm[: pcm.size // window * window].astype(np.float64).reshape(-1, window)
    voiced = np.sqrt(np.mean(x**2, axis=1)) > 0.003
    on = np.flatnonzero(voiced)
    inner = voiced[on[0]: on[-1] + 1]
    quiet = np.concatenate([[False], ~inner, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    return [float(n) * window / SAMPLE_RATE for n in edges[1::2] - edges[::2]]


def test_live_show_outlives_its_voice_server_with_no_gap_over_a_second(tmp_path, server, caplog):
    profile = parse_profile({"engine": "http", "url": server.url, "model": "cosyvoice", "name": "ceo", "timeout": 2})
    demo = load_rundown(DEMO_RUNDOWN)
    short = replace(demo.segments[0], script=("大家好，欢迎来到直播间", "这款耳机今天有优惠"))  # the server's part stays short
    rundown = replace(demo, segments=(short, *demo.segments[1:]))
    show = LiveShow("voice", rundown, tmp_path / "hls", voice_cache=None, voice=profile)

    async def drive() -> None:
        await show.start()  # the first segment is voiced by the brand's server; later ones meet it dead
        assert len(server.requests) > 0
        await asyncio.to_thread(server.stop)
        await show.wait_first_segment(10)
        await asyncio.sleep(12)
        await show.stop()

    with caplog.at_level("WARNING", logger="linkup.voice"):
        asyncio.run(drive())
    with av.open(str(show.playlist)) as c:
        pcm = np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(audio=0)])
    assert pcm.size > 9 * SAMPLE_RATE
    assert abs(dominant_hz(pcm[: 2 * SAMPLE_RATE]) - TONE_HZ) < 5  # the brand's server spoke the opening
    assert abs(dominant_hz(pcm[-3 * SAMPLE_RATE:]) - TONE_HZ) > 20  # the offline voice took over
    gaps = silent_runs_s(pcm)
    assert max(gaps, default=0.0) <= 1.0
    assert any("speech server" in r.getMessage() for r in caplog.records)
    assert show.failovers and {f["engine"] for f in show.failovers} == {"offline"}  # shown in the console


def test_a_stream_of_a_brand_speaks_with_the_brand_s_voice(tmp_path):
    async def main():
        studio = Studio(Config(data_dir=tmp_path / "data", voice_cache=tmp_path / "voice"))
        async with studio_server(tmp_path / "data", studio) as (base, http, auth):
            profile = {"engine": "offline", "name": "cmn-latn-pinyin+f3", "rate": 20, "pitch": 10, "volume": 0}
            status, _ = await call(http, "PUT", f"{base}/api/voice", json=profile, headers=auth("brand", "acme"))
            assert status == 200
            rundown = (Path(DEMO_RUNDOWN)).read_text(encoding="utf-8")
            status, made = await call(http, "POST", f"{base}/api/streams", headers=auth("buyer", "b"),
                                      json={"rundown": rundown, "id": "acme-show", "brand_id": "acme"})
            assert status == 201, made
            status, _ = await call(http, "POST", f"{base}/api/streams/acme-show/control", headers=auth("buyer", "b"),
                                   json={"action": "go_live"})
            assert status == 200
            voice = studio.streams["acme-show"].show.voice_settings
            assert (voice.name, voice.rate, voice.pitch) == ("cmn-latn-pinyin+f3", 20, 10)

    asyncio.run(main())
