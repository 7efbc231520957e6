"""The neural voice: Microsoft Edge's online TTS through edge-tts.

Sounds far better than espeak but needs the network, so every way it can fail is
turned into VoiceError for the failover to catch.
"""
from __future__ import annotations

import asyncio

import aiohttp
import edge_tts
import edge_tts.exceptions
import numpy as np

from avatar.voice.audio import decode_audio, master
from avatar.voice.base import Speech, VoiceError, VoiceSettings
from avatar.voice.text import Token, build_marks, fill_missing, tokenize
from studio.clock import SAMPLE_RATE

DEFAULT_VOICE = "zh-CN-XiaoxiaoNeural"
_TICKS_PER_SECOND = 10_000_000  # edge offsets are in 100 ns units
_HZ_PER_PITCH_PERCENT = 2  # ~200 Hz voices: 1 % of pitch is about 2 Hz


def boundary_samples(
    text: str, tokens: list[Token], boundaries: list[tuple[str, int, int]]
) -> list[int | None]:
    """Sample (48 kHz) where each token starts, from edge WordBoundary events.

    `boundaries` are (text, offset, duration) in 100 ns ticks. Edge words may span
    several characters ("大家"), so tokens inside one boundary are spread over its
    duration by character position. Boundaries whose text is not found are skipped.
    """
    found: list[int | None] = [None] * len(tokens)
    cursor, t = 0, 0
    for word, offset, duration in boundaries:
        at = text.find(word, cursor) if word else -1
        if at < 0:
            continue
        cursor = at + len(word)
        while t < len(tokens) and tokens[t].pos < at:
            t += 1
        while t < len(tokens) and tokens[t].pos < cursor:
            ticks = offset + duration * (tokens[t].pos - at) / len(word)
            found[t] = round(ticks * SAMPLE_RATE / _TICKS_PER_SECOND)
            t += 1
    return found


def _finish(audio: bytes, volume: int) -> tuple[np.ndarray, int, int]:
    """MP3 -> mastered 48 kHz pcm, samples cut at its start, untrimmed length at 48 kHz."""
    raw, rate = decode_audio(audio)
    pcm, cut = master(raw, rate, volume)
    return pcm, cut, raw.size * SAMPLE_RATE // rate


class EdgeEngine:
    """Speaks through the Edge online TTS; `settings.name` is an Edge voice ("" = Xiaoxiao)."""

    name = "edge"

    def __init__(self, proxy: str | None = None, timeout: float = 10.0) -> None:
        self.proxy = proxy
        self.timeout = timeout

    async def synthesize(self, text: str, settings: VoiceSettings) -> Speech:
        tokens = tokenize(text)
        if not tokens:
            raise VoiceError("nothing to say")
        try:
            audio, boundaries = await asyncio.wait_for(self._fetch(text, settings), self.timeout)
        except VoiceError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError, edge_tts.exceptions.EdgeTTSException) as exc:
            raise VoiceError(f"{type(exc).__name__}: {str(exc) or 'timed out'}") from exc
        pcm, cut, raw_samples = await asyncio.to_thread(_finish, audio, settings.volume)
        samples = fill_missing(boundary_samples(text, tokens, boundaries), raw_samples)
        return Speech(pcm, build_marks(tokens, [s - cut for s in samples], pcm.size), self.name)

    async def _fetch(
        self, text: str, settings: VoiceSettings
    ) -> tuple[bytes, list[tuple[str, int, int]]]:
        communicate = edge_tts.Communicate(
            text,
            settings.name or DEFAULT_VOICE,
            rate=f"{settings.rate:+d}%",
            pitch=f"{settings.pitch * _HZ_PER_PITCH_PERCENT:+d}Hz",
            volume="+0%",  # loudness is set in master() so both engines match
            boundary="WordBoundary",
            proxy=self.proxy,
            connect_timeout=max(1, round(self.timeout)),
            receive_timeout=max(1, round(self.timeout)),
        )
        audio = bytearray()
        boundaries: list[tuple[str, int, int]] = []
        async for chunk in communicate.stream():
            if chunk["type"] == "audio":
                audio += chunk["data"]
            elif chunk["type"] == "WordBoundary":
                boundaries.append((chunk["text"], int(chunk["offset"]), int(chunk["duration"])))
        if not audio:
            raise VoiceError("edge voice sent no audio")
        return bytes(audio), boundaries
