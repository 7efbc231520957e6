from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

import av
import numpy as np
import pytest

from avatar.voice.audio import decode_audio, normalize_loudness, resample, trim_silence
from avatar.voice.base import Mark, Speech, VoiceError, VoiceSettings
from avatar.voice.cache import CachedEngine, load_speech
from avatar.voice.edge import EdgeEngine, boundary_samples
from avatar.voice.factory import default_cache_dir, make_voice
from avatar.voice.offline import OfflineEngine
from avatar.voice.text import tokenize

LINE = "大家好，这款耳机只要一百九十九元。"
CJK_POSITIONS = [i for i, c in enumerate(LINE) if "\u4e00" <= c <= "\u9fff"]
CLOSED_PROXY = "http://127.0.0.1:9"
WINDOW = 480  # 10 ms at 48 kHz


def speak(text: str, settings: VoiceSettings = VoiceSettings(), engine=None) -> Speech:
    return asyncio.run((engine or OfflineEngine()).synthesize(text, settings))


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0


def window_rms(pcm: np.ndarray) -> np.ndarray:
    x = pcm[: pcm.size // WINDOW * WINDOW].astype(np.float64).reshape(-1, WINDOW)
    return np.sqrt(np.mean(x**2, axis=1))


def encode(pcm: np.ndarray, rate: int, fmt: str, codec: str) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buf.getvalue()


def sine(freq: float, rate: int, seconds: float, amplitude: float = 8000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude).astype(np.int16)


def dominant_hz(pcm: np.ndarray, rate: int) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(pcm.astype(np.float64)))) * rate / pcm.size)


@pytest.fixture(scope="module")
def line_speech() -> Speech:
    return speak(LINE)


# --- offline engine -----------------------------------------------------------------


def test_offline_line_is_audible_48k_speech(line_speech: Speech) -> None:
    pcm = line_speech.pcm
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert line_speech.engine == "offline"
    assert 1.0 < line_speech.seconds < 6.0
    assert rms(pcm) > 1000  # about -30 dBFS; silence would be ~0
    levels = window_rms(pcm)
    assert np.mean(levels > 300) > 0.6  # mostly voiced, not noise bursts in silence
    # leading/trailing silence trimmed to about 50 ms
    voiced = np.flatnonzero(levels > 300)
    assert voiced[0] <= 8 and voiced[-1] >= levels.size - 9


def test_offline_marks_one_per_cjk_char_in_order(line_speech: Speech) -> None:
    marks = line_speech.marks
    assert [m.pos for m in marks] == CJK_POSITIONS
    assert all(m.kind == "syllable" for m in marks)
    samples = [m.sample for m in marks]
    assert samples == sorted(samples)
    assert len(set(samples)) == len(samples)  # every syllable takes some time
    assert 0 <= samples[0] and samples[-1] < line_speech.samples
    # syllables spread over the whole line, not bunched at the start
    assert samples[-1] > 0.7 * line_speech.samples


def test_sample_at_on_real_speech(line_speech: Speech) -> None:
    marks = {m.pos: m.sample for m in line_speech.marks}
    for pos, sample in marks.items():
        assert line_speech.sample_at(pos) == sample
    comma = LINE.index("，")
    assert marks[comma - 1] < line_speech.sample_at(comma) < marks[comma + 1]
    assert marks[15] < line_speech.sample_at(len(LINE)) <= line_speech.samples


def test_comma_pause_is_quiet(line_speech: Speech) -> None:
    after_comma = line_speech.marks[3].sample  # 这, the first syllable after "，"
    assert line_speech.marks[3].pos == LINE.index("，") + 1
    pause = line_speech.pcm[after_comma - 4800 : after_comma]  # the 100 ms before it
    assert rms(pause) < 0.1 * rms(line_speech.pcm)


def test_rate_changes_duration(line_speech: Speech) -> None:
    fast = speak(LINE, VoiceSettings(rate=60))
    slow = speak(LINE, VoiceSettings(rate=-40))
    assert fast.seconds < 0.8 * line_speech.seconds
    assert slow.seconds > 1.25 * line_speech.seconds


def test_volume_setting_survives_normalisation(line_speech: Speech) -> None:
    quiet = speak(LINE, VoiceSettings(volume=-50))
    ratio = rms(quiet.pcm) / rms(line_speech.pcm)
    assert 0.4 < ratio < 0.6


def test_latin_words_and_digits_get_word_marks() -> None:
    text = "【新品】iPhone 15 Pro，只要５９９９元"
    speech = speak(text)
    by_pos = {m.pos: m for m in speech.marks}
    assert [p for p, m in by_pos.items() if m.kind == "word"] == [4, 11, 14, 20]
    assert sorted(p for p, m in by_pos.items() if m.kind == "syllable") == [1, 2, 18, 19, 24]
    samples = [m.sample for m in speech.marks]
    assert samples == sorted(samples) and samples[-1] < speech.samples


def test_tokenize_positions() -> None:
    tokens = tokenize("3、2、1 上链接 iPhone!")
    assert [(t.pos, t.text, t.kind) for t in tokens] == [
        (0, "3", "word"),
        (2, "2", "word"),
        (4, "1", "word"),
        (6, "上", "syllable"),
        (7, "链", "syllable"),
        (8, "接", "syllable"),
        (10, "iPhone", "word"),
    ]


@pytest.mark.parametrize("text", ["", "   ", "。！", "【】"])
def test_nothing_to_say(text: str) -> None:
    with pytest.raises(VoiceError, match="nothing to say"):
        speak(text)


def test_concurrent_lines_do_not_mix() -> None:
    texts = ["大家好", "上链接", "库存只剩十件了"]

    async def together() -> list[Speech]:
        engine = OfflineEngine()
        return await asyncio.gather(*(engine.synthesize(t, VoiceSettings()) for t in texts))

    # espeak is not bit-exact from run to run (a few ms of timing jitter), so compare
    # shape: mixed-up buffers would change durations by whole syllables.
    for text, speech in zip(texts, asyncio.run(together())):
        alone = speak(text)
        assert abs(speech.samples - alone.samples) < 0.05 * alone.samples
        assert [m.pos for m in speech.marks] == [m.pos for m in alone.marks]
        assert all(abs(a.sample - b.sample) < 2400 for a, b in zip(speech.marks, alone.marks))


# --- Speech.sample_at ---------------------------------------------------------------


def test_sample_at_interpolates_and_extrapolates() -> None:
    speech = Speech(
        np.zeros(10_000, np.int16), (Mark(1, 1000), Mark(2, 2000), Mark(5, 5000))
    )
    assert speech.sample_at(0) == 0
    assert speech.sample_at(1) == 1000
    assert speech.sample_at(3) == 3000
    assert speech.sample_at(4) == 4000
    assert speech.sample_at(6) == 6000  # mean pace of 1000 samples per char
    assert speech.sample_at(50) == 10_000  # capped at the end of the audio
    assert Speech(np.zeros(100, np.int16)).sample_at(3) == 0


# --- edge, failover, factory --------------------------------------------------------


def test_edge_unreachable_raises_voice_error() -> None:
    with pytest.raises(VoiceError, match="Error"):
        speak(LINE, VoiceSettings(engine="edge"), EdgeEngine(proxy=CLOSED_PROXY, timeout=5))


def test_edge_boundaries_become_marks() -> None:
    text = "大家好，iPhone来了"
    tokens = tokenize(text)
    boundaries = [("大家", 1_000_000, 4_000_000), ("好", 5_000_000, 2_000_000),
                  ("iPhone", 9_000_000, 3_000_000), ("来了", 12_000_000, 2_000_000)]
    assert boundary_samples(text, tokens, boundaries) == [
        4800, 14400, 24000, 43200, 57600, 62400
    ]


def test_make_voice_edge_falls_back_to_offline(caplog: pytest.LogCaptureFixture) -> None:
    engine = make_voice(VoiceSettings(engine="edge"), edge_proxy=CLOSED_PROXY)
    assert engine.name == "edge"
    with caplog.at_level(logging.WARNING, logger="linkup.voice"):
        settings = VoiceSettings(engine="edge", name="zh-CN-XiaoxiaoNeural")
        speech = speak("上链接", settings, engine)
    assert speech.engine == "offline"
    assert rms(speech.pcm) > 1000 and [m.pos for m in speech.marks] == [0, 1, 2]
    [record] = [r for r in caplog.records if r.name == "linkup.voice"]
    assert record.levelno == logging.WARNING
    assert "edge voice failed" in record.getMessage()
    assert "offline voice" in record.getMessage()


def test_make_voice_rejects_unknown_engine() -> None:
    with pytest.raises(ValueError, match="offline, edge"):
        make_voice(VoiceSettings(engine="siri"))


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LINKUP_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("LINKUP_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "linkup" / "voice"


# --- cache --------------------------------------------------------------------------


class CountingEngine(OfflineEngine):
    def __init__(self) -> None:
        self.calls = 0

    async def synthesize(self, text: str, settings: VoiceSettings) -> Speech:
        self.calls += 1
        return await super().synthesize(text, settings)


def test_cache_hit_skips_engine(tmp_path: Path) -> None:
    inner = CountingEngine()
    cached = CachedEngine(inner, tmp_path)
    first = speak("上链接", VoiceSettings(), cached)
    second = speak("上链接", VoiceSettings(), cached)
    assert inner.calls == 1
    assert np.array_equal(first.pcm, second.pcm) and second.pcm.dtype == np.int16
    assert second.marks == first.marks and second.engine == "offline"
    speak("上链接", VoiceSettings(rate=20), cached)
    assert inner.calls == 2
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".npz", ".npz"]  # no temp files


def test_corrupt_cache_file_is_rewritten(tmp_path: Path) -> None:
    inner = CountingEngine()
    cached = CachedEngine(inner, tmp_path)
    path = cached.path_for("上链接", VoiceSettings())
    path.write_bytes(b"PK\x03\x04 half a file")
    speech = speak("上链接", VoiceSettings(), cached)
    assert inner.calls == 1 and rms(speech.pcm) > 1000
    reloaded = load_speech(path)
    assert reloaded is not None and np.array_equal(reloaded.pcm, speech.pcm)


# --- audio helpers ------------------------------------------------------------------


def test_decode_wav_round_trip() -> None:
    pcm = sine(440, 24_000, 1.0)
    decoded, rate = decode_audio(encode(pcm, 24_000, "wav", "pcm_s16le"))
    assert rate == 24_000 and np.array_equal(decoded, pcm)


def test_decode_mp3_round_trip() -> None:
    pcm = sine(440, 24_000, 1.0)
    decoded, rate = decode_audio(encode(pcm, 24_000, "mp3", "libmp3lame"))
    assert rate == 24_000 and decoded.dtype == np.int16
    assert abs(decoded.size - pcm.size) <= 1152
    assert abs(dominant_hz(decoded, rate) - 440) < 2
    assert 0.8 < rms(decoded) / rms(pcm) < 1.2


@pytest.mark.parametrize("data", [b"", b"this is not audio" * 50])
def test_decode_garbage_raises_voice_error(data: bytes) -> None:
    with pytest.raises(VoiceError, match="cannot decode audio"):
        decode_audio(data)


def test_resample_keeps_pitch_and_timing() -> None:
    out = resample(sine(1000, 22_050, 1.0), 22_050)
    assert out.dtype == np.int16 and out.size == 48_000
    assert abs(dominant_hz(out, 48_000) - 1000) < 2
    impulse = np.zeros(22_050, np.int16)
    impulse[1000] = 20_000
    assert abs(int(np.argmax(resample(impulse, 22_050))) - 1000 * 48_000 / 22_050) <= 2


def test_normalize_loudness_targets_voiced_rms() -> None:
    tone = sine(300, 48_000, 0.5, amplitude=1000)
    with_pause = np.concatenate([tone, np.zeros(48_000, np.int16), tone])
    out = normalize_loudness(with_pause, -20.0)
    assert abs(20 * np.log10(rms(out[: tone.size]) / 32768) + 20) < 0.2
    assert not out[tone.size : tone.size + 48_000].any()  # the pause stays silent
    loud = normalize_loudness(tone, 0.0)  # would clip: peak limited to -1 dBFS
    assert abs(int(np.abs(loud.astype(np.int32)).max()) - 32768 * 10 ** (-1 / 20)) < 40


def test_trim_silence_keeps_50_ms() -> None:
    tone = sine(300, 48_000, 0.2)
    padded = np.concatenate([np.zeros(24_000, np.int16), tone, np.zeros(24_000, np.int16)])
    trimmed, cut = trim_silence(padded)
    first_loud = int(np.flatnonzero(np.abs(padded) > 80)[0])
    assert cut == first_loud - 2400
    assert np.array_equal(trimmed, padded[cut : cut + trimmed.size])
    assert trimmed.size < tone.size + 2 * 2400 + 10
    silent, _ = trim_silence(np.zeros(1000, np.int16))
    assert silent.size == 0
