"""The brand's own recordings: a line with a recording is spoken by it, verbatim.

Recordings are stored already processed (48 kHz mono, trimmed, at the common
loudness: see uploads.py), one WAV per line, named by the line's key. A line with no
recording raises VoiceError so the failover speaks it with the profile's TTS.
"""
from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import numpy as np

from avatar.voice.audio import decode_audio, normalize_loudness
from avatar.voice.base import Mark, Speech, VoiceError, VoiceSettings
from avatar.voice.text import build_marks, halfwidth, tokenize
from studio.clock import SAMPLE_RATE

_WINDOW = SAMPLE_RATE // 100  # 10 ms
_VOICED_RANGE_DB = 30.0  # windows this far below the loudest count as pauses
_LETTERS_PER_SYLLABLE = 3  # a Latin word takes about one syllable's time per 3 letters
_IGNORED = re.compile(r"[\W_]+")  # spaces and punctuation do not change which line it is


def line_key(text: str) -> str:
    """The recording's name: the same words match whatever the spacing, punctuation or width."""
    words = _IGNORED.sub("", halfwidth(text)).lower()
    return hashlib.sha256(words.encode()).hexdigest()[:32]


def envelope_marks(text: str, pcm: np.ndarray) -> tuple[Mark, ...]:
    """Marks for audio that came without timing: tokens spread over the voiced 10 ms windows.

    Each CJK character weighs one unit, a Latin word one per three letters; the
    units are laid end to end over the windows that are voiced (within 30 dB of the
    loudest), so pauses get no syllables. Simple, and good enough for lip motion and
    cues that land within a syllable or two.
    """
    tokens = tokenize(text)
    if not tokens or pcm.size == 0:
        return ()
    n = max(1, pcm.size // _WINDOW)
    x = pcm[: n * _WINDOW].astype(np.float64)
    if x.size < _WINDOW:
        x = np.pad(x, (0, _WINDOW - x.size))
    rms = np.sqrt(np.mean(x.reshape(n, -1) ** 2, axis=1))
    voiced = np.flatnonzero(rms >= rms.max() * 10 ** (-_VOICED_RANGE_DB / 20))
    if voiced.size == 0:
        voiced = np.arange(n)
    weights = [1 if t.kind == "syllable" else max(1, -(-len(t.text) // _LETTERS_PER_SYLLABLE)) for t in tokens]
    starts = np.concatenate([[0], np.cumsum(weights)[:-1]]) / sum(weights)
    samples = [int(voiced[int(f * voiced.size)]) * _WINDOW for f in starts]
    return build_marks(tokens, samples, pcm.size)


def recording_path(folder: Path, text: str) -> Path:
    return Path(folder) / f"{line_key(text)}.wav"


def load_recording(path: Path) -> np.ndarray:
    """A stored recording's PCM (48 kHz mono int16)."""
    pcm, rate = decode_audio(path.read_bytes())
    if rate != SAMPLE_RATE:
        raise VoiceError(f"{path}: recording is {rate} Hz, expected {SAMPLE_RATE}")
    return pcm


class RecordedEngine:
    """Speaks lines recorded in `folder`; any other line raises VoiceError."""

    name = "recorded"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    async def synthesize(self, text: str, settings: VoiceSettings) -> Speech:
        path = recording_path(self.folder, text)
        try:
            pcm = await asyncio.to_thread(load_recording, path)
        except FileNotFoundError:
            raise VoiceError("no recording of this line") from None
        except OSError as exc:
            raise VoiceError(f"cannot read recording {path.name}: {exc.strerror}") from None
        if settings.volume:
            gain_db = 20 * np.log10(1.0 + settings.volume / 100)
            pcm = normalize_loudness(pcm, -20.0 + gain_db)
        return Speech(pcm, envelope_marks(text, pcm), self.name)
