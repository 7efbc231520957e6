"""One interface for every voice engine.

An engine turns text into 48 kHz mono int16 PCM plus timing marks, so the host's
lips and the show's cues can be placed on the one media clock.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from studio.clock import SAMPLE_RATE


class VoiceError(Exception):
    """An engine could not speak a line (unreachable service, bad voice, empty audio)."""


@dataclass(frozen=True)
class VoiceSettings:
    engine: str = "offline"  # "offline" | "edge"
    name: str = ""  # engine-specific voice name; "" = the engine's default Mandarin voice
    rate: int = 0  # percent relative to the engine's normal speed (-50..100)
    pitch: int = 0  # percent relative to normal pitch (-50..50)
    volume: int = 0  # percent relative to normal volume (-50..50)

    def cache_key(self) -> str:
        return f"{self.engine}|{self.name}|{self.rate}|{self.pitch}|{self.volume}"


@dataclass(frozen=True)
class Mark:
    """The audio sample at which the character at `pos` of the spoken text starts."""

    pos: int  # character index in the text handed to synthesize()
    sample: int  # sample index at SAMPLE_RATE, from the start of this Speech
    kind: str = "syllable"  # "syllable" | "word"


@dataclass(frozen=True)
class Speech:
    pcm: np.ndarray  # int16, mono, SAMPLE_RATE
    marks: tuple[Mark, ...] = field(default_factory=tuple)
    engine: str = ""  # which engine actually spoke (after any failover)

    @property
    def samples(self) -> int:
        return int(self.pcm.shape[0])

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    def sample_at(self, pos: int) -> int:
        """Sample where the character at `pos` starts (interpolating between marks).

        Exact at marked positions, linear between neighbouring marks, 0 before the
        first mark (leading punctuation is silent). Speech does not know its text, so
        past the last mark it extrapolates at the line's mean pace (samples per
        character between first and last mark), capped at the end of the audio: a
        position at or beyond len(text) therefore lands at or near `samples`.
        Without marks every position maps to 0.
        """
        marks = self.marks
        if not marks or pos < marks[0].pos:
            return 0
        i = bisect_right(marks, pos, key=lambda m: m.pos) - 1
        left = marks[i]
        if i + 1 < len(marks):
            right = marks[i + 1]
            span = right.pos - left.pos
            return left.sample + (right.sample - left.sample) * (pos - left.pos) // span
        first = marks[0]
        chars = left.pos - first.pos
        pace = (left.sample - first.sample) / chars if chars else 0.0
        return min(self.samples, left.sample + round(pace * (pos - left.pos)))


class VoiceEngine(Protocol):
    name: str

    async def synthesize(self, text: str, settings: VoiceSettings) -> Speech:
        """Speak `text`; raise VoiceError when this engine cannot."""
        ...
