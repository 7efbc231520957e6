"""Brand voices end to end: profiles, the HTTP speech server, recorded lines, failover, preflight, `linkup say`."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from speech_server import (
    TONE_HZ,
    SpeechServer,
    dominant_hz,
    wav,
)

from avatar.voice.audio import decode_audio
from avatar.voice.base import Speech, VoiceSettings
from avatar.voice.factory import make_voice, voice_chain
from avatar.voice.http_engine import request_body, speech_url
from avatar.voice.preflight import preflight, rundown_lines
from avatar.voice.profile import ProfileError, VoiceProfile, load_profile, parse_profile
from avatar.voice.recorded import envelope_marks
from avatar.voice.uploads import check_upload, store_recording
from script_gen.rundown import load_rundown
from studio import voice_cli
from studio.clock import SAMPLE_RATE
from studio.render import DEMO_RUNDOWN

CLOSED_PROXY = "http://127.0.0.1:9"
WINDOW = 480  # 10 ms
PAUSE_AFTER = SAMPLE_RATE * 400 // 1000  # Line.pause_after_ms default, as the show inserts it


@pytest.fixture
def server():
    s = SpeechServer()
    yield s
    s.close()


def http_profile(url: str, **extra) -> VoiceProfile:
    return parse_profile({"engine": "http", "url": url, "model": "cosyvoice", "name": "ceo", **extra})


def speak(engine, text: str, settings: VoiceSettings) -> Speech:
    return asyncio.run(engine.synthesize(text, settings))


def window_rms(pcm: np.ndarray) -> np.ndarray:
    x = pcm[: pcm.size // WINDOW * WINDOW].astype(np.float64).reshape(-1, WINDOW)
    return np.sqrt(np.mean(x**2, axis=1))


def longest_silence_s(pcm: np.ndarray) -> float:
    quiet = np.concatenate([[False], window_rms(pcm) < 100, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    runs = edges[1::2] - edges[::2]
    return float(runs.max(initial=0)) * WINDOW / SAMPLE_RATE


# --- profiles -----------------------------------------------------------------------


def test_profile_defaults_and_settings() -> None:
    profile = parse_profile({"engine": "edge", "name": "zh-CN-YunxiNeural", "rate": 20, "volume": -10})
    assert profile.settings() == VoiceSettings("edge", "zh-CN-YunxiNeural", 20, 0, -10)
    assert profile.fallback_settings() == VoiceSettings("offline", "", 20, 0, -10)
    assert profile.timeout_for("edge") == 10.0 and profile.timeout_for("http") == 3.0
    assert http_profile("http://x", timeout=1.5).timeout_for("http") == 1.5


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"engine": "siri"}, "brand.yaml: engine: must be one of offline, edge, http, recorded, got 'siri'"),
        ({"rate": 500}, "brand.yaml: rate: must be a whole number from -50 to 100, got 500"),
        ({"pitch": "high"}, "brand.yaml: pitch: must be a whole number from -50 to 50, got 'high'"),
        ({"volume": True}, "brand.yaml: volume: must be a whole number from -50 to 50, got True"),
        ({"engine": "http"}, "brand.yaml: url: the http engine needs an http(s):// server URL, got ''"),
        ({"engine": "http", "url": "ftp://x"}, "brand.yaml: url: the http engine needs an http(s):// server URL"),
        ({"engine": "recorded"}, "brand.yaml: recordings: the recorded engine needs the folder"),
        ({"engine": "edge", "fallback": "edge"}, "brand.yaml: fallback: must differ from engine 'edge'"),
        ({"fallback": "recorded"}, "brand.yaml: fallback: must be one of offline, edge, http, got 'recorded'"),
        ({"timeout": 0}, "brand.yaml: timeout: must be seconds from 0.1 to 60, got 0"),
        ({"voice": "x"}, "brand.yaml: voice: unknown field; allowed: engine, name,"),
        (["engine"], "brand.yaml: (top): must be a mapping"),
    ],
)
def test_profile_errors_name_file_and_field(doc: object, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(doc, "brand.yaml")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_load_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "ceo.yaml"
    path.write_text("engine: recorded\nrecordings: lines\nfallback: edge\nfallback_name: zh-CN-YunxiNeural\n")
    profile = load_profile(path)
    assert profile.recordings == str(tmp_path / "lines")
    assert profile.fallback_settings().name == "zh-CN-YunxiNeural"
    path.write_text("engine: [1")
    with pytest.raises(ProfileError, match=r"ceo.yaml: \(file\): not YAML/JSON"):
        load_profile(path)


def test_chain_ends_with_offline_voice(tmp_path: Path) -> None:
    recorded = parse_profile({"engine": "recorded", "recordings": str(tmp_path), "fallback": "http",
                              "url": "http://127.0.0.1:9", "name": "ceo"})
    assert [e.name for e, _ in voice_chain(recorded)] == ["recorded", "http", "offline"]
    assert [e.name for e, _ in voice_chain(VoiceProfile())] == ["offline"]
    assert [e.name for e, _ in voice_chain(parse_profile({"engine": "edge"}))] == ["edge", "offline"]


def test_http_request_shape() -> None:
    assert speech_url("http://h:9880/") == "http://h:9880/v1/audio/speech"
    assert speech_url("http://h/v1") == "http://h/v1/audio/speech"
    body = request_body("上链接", VoiceSettings("http", "ceo", rate=25, pitch=10), "fish")
    assert body == {"model": "fish", "input": "上链接", "voice": "ceo", "response_format": "wav", "speed": 1.25}


def test_envelope_marks_skip_pauses() -> None:
    sound = (np.sin(np.arange(4800) * 0.1) * 8000).astype(np.int16)  # 100 ms
    pcm = np.concatenate([sound, sound, np.zeros(48_000, np.int16), sound, sound])
    marks = envelope_marks("一二，三四", pcm)
    assert [m.pos for m in marks] == [0, 1, 3, 4]
    assert [m.sample for m in marks] == [0, 4800, 57_600, 62_400]  # the 1 s pause gets none


# --- the HTTP speech server ---------------------------------------------------------


def test_http_engine_end_to_end(server: SpeechServer) -> None:
    profile = http_profile(server.url, rate=10)
    speech = speak(make_voice(profile), "大家好，上链接", profile.settings())
    assert speech.engine == "http"
    assert server.requests == [{"model": "cosyvoice", "input": "大家好，上链接", "voice": "ceo",
                                "response_format": "wav", "speed": 1.1}]
    # 6 syllables of 200 ms from a 24 kHz server -> 48 kHz; the last 50 ms gap kept by trimming
    assert abs(speech.samples - 6 * 9600) <= 100
    assert abs(dominant_hz(speech.pcm) - TONE_HZ) < 2
    level = 20 * np.log10(np.sqrt(np.mean(speech.pcm[:7200].astype(np.float64) ** 2)) / 32768)
    assert abs(level + 20) < 0.5  # the same loudness target as every engine
    starts = [m.sample for m in speech.marks]
    assert [m.pos for m in speech.marks] == [0, 1, 2, 4, 5, 6]
    assert all(abs(s - 9600 * i) <= 480 for i, s in enumerate(starts))  # on each burst


def test_http_errors_and_hangs_fall_back(server: SpeechServer, caplog: pytest.LogCaptureFixture) -> None:
    profile = http_profile(server.url, timeout=0.5)
    voice = make_voice(profile)
    with caplog.at_level(logging.WARNING, logger="linkup.voice"):
        broken = speak(voice, "坏了吗", profile.settings())
        hung = speak(voice, "慢一点", profile.settings())
    assert broken.engine == hung.engine == "offline"
    assert window_rms(broken.pcm).mean() > 300 and window_rms(hung.pcm).mean() > 300
    messages = [r.getMessage() for r in caplog.records if r.name == "linkup.voice"]
    assert "answered 500: model crashed" in messages[0]
    assert "took over 0.5 s" in messages[1]


def test_server_killed_mid_show_leaves_no_gap(server: SpeechServer) -> None:
    lines = ["大家好，欢迎来到直播间", "这款耳机降噪很强", "库存只剩十件了", "三、二、一，上链接", "喜欢的宝宝抓紧下单"]
    profile = http_profile(server.url)
    voice = make_voice(profile)
    track, engines = [], []
    for i, text in enumerate(lines):
        if i == 2:
            server.stop()
        speech = speak(voice, text, profile.settings())
        engines.append(speech.engine)
        track += [speech.pcm, np.zeros(PAUSE_AFTER, np.int16)]
    assert engines == ["http", "http", "offline", "offline", "offline"]
    audio = np.concatenate(track)
    decoded, rate = decode_audio(wav(audio, SAMPLE_RATE))
    assert rate == SAMPLE_RATE and np.array_equal(decoded, audio)
    assert longest_silence_s(decoded) < 1.0
    assert np.mean(window_rms(decoded) > 300) > 0.5


# --- recorded lines -----------------------------------------------------------------


def test_recorded_line_verbatim_others_fall_back(tmp_path: Path, server: SpeechServer) -> None:
    ceo = (np.sin(2 * np.pi * 180 * np.arange(44_100 * 2) / 44_100) * 3000).astype(np.int16)
    upload = wav(np.concatenate([np.zeros(22_050, np.int16), ceo]), 44_100, layout="stereo")
    store_recording(tmp_path, "这是我们老板亲自推荐的！", upload)
    profile = parse_profile({"engine": "recorded", "recordings": str(tmp_path), "fallback": "http",
                             "url": server.url, "name": "ceo-clone"})
    voice = make_voice(profile)
    recorded = speak(voice, "这是我们 老板亲自推荐的。", profile.settings())  # spacing/punctuation ignored
    assert recorded.engine == "recorded"
    assert np.array_equal(recorded.pcm, check_upload(upload))
    assert len(recorded.marks) == 11 and recorded.marks[-1].sample < recorded.samples
    other = speak(voice, "上链接", profile.settings())
    assert other.engine == "http" and server.requests[-1]["voice"] == "ceo-clone"
    server.stop()
    assert speak(voice, "上链接吧", profile.settings()).engine == "offline"


# --- preflight ----------------------------------------------------------------------


def test_preflight_reports_fallbacks_and_warms_cache(tmp_path: Path, server: SpeechServer) -> None:
    profile = http_profile(server.url)
    texts = ["大家好", "这台坏了", "上链接"]
    progress: list[tuple[int, int]] = []
    chain = voice_chain(profile, tmp_path)
    reports = asyncio.run(preflight(chain, texts, lambda done, total: progress.append((done, total))))
    assert [(r.text, r.engine, r.fell_back) for r in reports] == [
        ("大家好", "http", False), ("这台坏了", "offline", True), ("上链接", "http", False)]
    assert reports[0].reasons == () and "answered 500" in reports[1].reasons[0]
    assert progress[-1] == (3, 3) and sorted(p[0] for p in progress) == [1, 2, 3]
    asked = len(server.requests)
    again = asyncio.run(preflight(voice_chain(profile, tmp_path), ["大家好", "上链接"]))
    assert len(server.requests) == asked  # served from the cache the show will read
    assert [r.engine for r in again] == ["http", "http"]


def test_rundown_lines_are_the_shows_first_pass() -> None:
    lines = rundown_lines(load_rundown(DEMO_RUNDOWN))
    assert len(lines) == len(set(lines)) > 5
    assert any("上链接" in line for line in lines)


# --- linkup say / voices ------------------------------------------------------------


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="linkup")
    voice_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_say_edge_unreachable_warns_and_speaks_offline(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "line.wav"
    assert run_cli("say", "大家好，上链接", "-o", str(out), "--engine", "edge", "--proxy", CLOSED_PROXY) == 0
    err = capsys.readouterr().err
    assert err.startswith("linkup: warning: the edge voice could not speak (edge: ")
    assert err.rstrip().endswith("used the offline voice")
    pcm, rate = decode_audio(out.read_bytes())
    assert rate == SAMPLE_RATE and 0.8 < pcm.size / rate < 4
    assert np.mean(window_rms(pcm) > 300) > 0.6


def test_say_with_http_profile(tmp_path: Path, server: SpeechServer, capsys: pytest.CaptureFixture) -> None:
    profile = tmp_path / "brand.json"
    profile.write_text(json.dumps({"engine": "http", "url": server.url, "model": "m", "name": "a"}))
    out = tmp_path / "line.wav"
    assert run_cli("say", "上链接", "-o", str(out), "--profile", str(profile), "--voice", "b") == 0
    assert server.requests[-1]["voice"] == "b"
    pcm, rate = decode_audio(out.read_bytes())
    assert rate == SAMPLE_RATE and abs(dominant_hz(pcm) - TONE_HZ) < 2
    assert capsys.readouterr().err == ""


def test_say_bad_profile_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    profile = tmp_path / "brand.yaml"
    profile.write_text("engine: edge\nrate: fast\n")
    out = tmp_path / "line.wav"
    assert run_cli("say", "hi", "-o", str(out), "--profile", str(profile)) == 2
    assert capsys.readouterr().err == (
        f"linkup: error: {profile}: rate: must be a whole number from -50 to 100, got 'fast'\n")
    assert not out.exists()


def test_voices_lists_every_engine(capsys: pytest.CaptureFixture) -> None:
    assert run_cli("voices") == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")]
    assert listed == ["offline", "edge", "http", "recorded"]
