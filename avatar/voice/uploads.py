"""Checking a brand's recorded line before it can go on air.

Uploads come from anyone's phone or laptop in any container, so they are decoded,
brought to show audio (48 kHz mono, trimmed, the engines' loudness target) and
bounded. A refused upload leaves nothing behind; an accepted one appears whole
(temp file + os.replace) or not at all.
"""
from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np

from avatar.voice.atomic import write_atomic
from avatar.voice.audio import decode_audio, master
from avatar.voice.base import VoiceError
from avatar.voice.recorded import recording_path
from avatar.voice.text import tokenize
from studio.clock import SAMPLE_RATE

MAX_BYTES = 10 * 1024 * 1024
MAX_SECONDS = 30.0
MIN_SOUND_SECONDS = 0.3
_SILENT_PEAK = 100  # about -50 dBFS: quieter than this is a dead microphone, not a voice


class UploadError(ValueError):
    """A refused upload; str(err) is one line a brand can act on."""


def check_upload(data: bytes) -> np.ndarray:
    """Uploaded audio bytes -> the recording as it will be played (48 kHz mono int16)."""
    if not data:
        raise UploadError("the file is empty")
    if len(data) > MAX_BYTES:
        raise UploadError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {MAX_BYTES // 2**20} MB")
    try:
        raw, rate = decode_audio(data)
    except VoiceError as exc:
        raise UploadError(f"not an audio file we can read ({exc})") from None
    seconds = raw.size / rate
    if seconds > MAX_SECONDS:
        raise UploadError(f"the recording is {seconds:.1f} s; the limit is {MAX_SECONDS:.0f} s per line")
    if int(np.abs(raw.astype(np.int32)).max()) < _SILENT_PEAK:
        raise UploadError("the recording is silent")
    try:
        pcm, _ = master(raw, rate)
    except VoiceError:
        raise UploadError("the recording is silent") from None
    if pcm.size < MIN_SOUND_SECONDS * SAMPLE_RATE:
        raise UploadError(f"only {pcm.size / SAMPLE_RATE:.2f} s left after trimming silence; at least {MIN_SOUND_SECONDS} s needed")
    return pcm


def wav_bytes(pcm: np.ndarray) -> bytes:
    """48 kHz mono int16 -> a WAV file's bytes."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, np.int16)[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts = SAMPLE_RATE, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buf.getvalue()


def store_recording(folder: Path, text: str, data: bytes) -> Path:
    """Check `data` and store it as the recording of line `text`; UploadError if refused."""
    if not tokenize(text):
        raise UploadError("the line has no words to record")
    path = recording_path(folder, text)
    write_atomic(path, wav_bytes(check_upload(data)))
    return path


def delete_recording(folder: Path, text: str) -> bool:
    """Remove the recording of `text`; False when there was none."""
    try:
        recording_path(folder, text).unlink()
    except FileNotFoundError:
        return False
    return True
