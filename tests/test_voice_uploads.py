"""Recorded-line uploads: any container in, show audio out, bad files refused with nothing stored."""
from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from avatar.voice.audio import decode_audio
from avatar.voice.recorded import recording_path
from avatar.voice.uploads import (
    MAX_BYTES,
    UploadError,
    check_upload,
    delete_recording,
    store_recording,
)
from studio.clock import SAMPLE_RATE

LINE = "这款是我们自己工厂做的"


def encode(pcm: np.ndarray, rate: int, fmt: str, codec: str, layout: str = "mono") -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        channels = 1 if layout == "mono" else 2
        data = np.repeat(pcm[None, :], channels, axis=0).T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="s16", layout=layout)
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buf.getvalue()


def voice_like(rate: int, seconds: float, amplitude: float = 4000) -> np.ndarray:
    """Half a second of silence, then a 200 Hz tone with syllable-rate tremolo, then silence."""
    t = np.arange(int(rate * seconds)) / rate
    tone = np.sin(2 * np.pi * 200 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) * amplitude
    pad = np.zeros(rate // 2)
    return np.concatenate([pad, tone, pad]).astype(np.int16)


def level_dbfs(pcm: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) / 32768)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize(
    "rate, fmt, codec, layout",
    [(44_100, "wav", "pcm_s16le", "stereo"), (22_050, "mp3", "libmp3lame", "mono"),
     (48_000, "ogg", "libopus", "stereo"), (16_000, "flac", "flac", "mono")],
)
def test_any_container_becomes_48k_trimmed_normalised(rate: int, fmt: str, codec: str, layout: str) -> None:
    pcm = check_upload(encode(voice_like(rate, 1.5), rate, fmt, codec, layout))
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert 1.5 <= pcm.size / SAMPLE_RATE < 1.5 + 0.2  # the half-second pads trimmed to ~50 ms
    assert abs(level_dbfs(pcm) + 20) < 1.5  # the engines' loudness target
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / pcm.size - 200) < 3


def test_stored_recording_is_whole_and_replaceable(tmp_path: Path) -> None:
    first = encode(voice_like(44_100, 1.0), 44_100, "wav", "pcm_s16le")
    path = store_recording(tmp_path, LINE, first)
    assert path == recording_path(tmp_path, LINE) and files(tmp_path) == [path.name]
    stored, rate = decode_audio(path.read_bytes())
    assert rate == SAMPLE_RATE and np.array_equal(stored, check_upload(first))
    second = encode(voice_like(44_100, 2.0), 44_100, "wav", "pcm_s16le")
    store_recording(tmp_path, LINE + "！", second)  # the same line: replaces it
    assert files(tmp_path) == [path.name]
    assert decode_audio(path.read_bytes())[0].size > stored.size
    assert delete_recording(tmp_path, LINE) and not delete_recording(tmp_path, LINE)
    assert files(tmp_path) == []


def refused(tmp_path: Path, data: bytes, message: str, text: str = LINE) -> None:
    folder = tmp_path / "recordings"
    with pytest.raises(UploadError) as info:
        store_recording(folder, text, data)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert files(folder) == []  # nothing stored, no temp file left


def test_zero_length_refused(tmp_path: Path) -> None:
    refused(tmp_path, b"", "the file is empty")


def test_corrupt_refused(tmp_path: Path) -> None:
    good = encode(voice_like(44_100, 1.0), 44_100, "mp3", "libmp3lame")
    refused(tmp_path, b"RIFF\x00\x00\x00\x00WAVEjunk" * 100, "not an audio file we can read")
    refused(tmp_path, bytes(reversed(good)), "not an audio file we can read")


def test_huge_refused(tmp_path: Path) -> None:
    refused(tmp_path, b"\x00" * (MAX_BYTES + 1), "the file is 10.0 MB; the limit is 10 MB")


def test_too_long_refused(tmp_path: Path) -> None:
    data = encode(voice_like(8_000, 31.0), 8_000, "wav", "pcm_s16le")
    assert len(data) < MAX_BYTES
    refused(tmp_path, data, "the recording is 32.0 s; the limit is 30 s per line")


def test_silent_refused(tmp_path: Path) -> None:
    refused(tmp_path, encode(np.zeros(44_100, np.int16), 44_100, "wav", "pcm_s16le"), "the recording is silent")
    hiss = (np.random.default_rng(0).normal(0, 20, 44_100)).astype(np.int16)
    refused(tmp_path, encode(hiss, 44_100, "wav", "pcm_s16le"), "the recording is silent")


def test_too_little_sound_refused(tmp_path: Path) -> None:
    click = np.zeros(44_100, np.int16)
    click[20_000:22_000] = 8000
    refused(tmp_path, encode(click, 44_100, "wav", "pcm_s16le"), "only 0.15 s left after trimming silence; at least 0.3 s needed")


def test_line_without_words_refused(tmp_path: Path) -> None:
    refused(tmp_path, encode(voice_like(44_100, 1.0), 44_100, "wav", "pcm_s16le"),
            "the line has no words to record", text="！？")
