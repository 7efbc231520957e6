"""A Script: what the host says, line by line, with cues pinned to characters.

Cue positions index into `Line.text` (the display text, as shown in subtitles).
The voice speaks `Line.speech`; `Line.speech_index` maps every display position
(0..len(text), inclusive) to the matching position in `speech`, so a cue can be
timed by the voice's marks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CueKind = Literal["show_card", "countdown", "link_up", "hide_card", "gesture"]


@dataclass(frozen=True)
class Cue:
    kind: CueKind
    at: int  # character position in Line.text
    product_id: str
    value: int | None = None  # countdown digit (3, 2, 1) for kind == "countdown"


@dataclass(frozen=True)
class Line:
    text: str  # display text (subtitles)
    speech: str  # normalised text handed to the voice
    speech_index: tuple[int, ...]  # len(text) + 1 entries: display pos -> speech pos
    cues: tuple[Cue, ...] = ()
    pause_after_ms: int = 400  # silence after the line

    def speech_pos(self, display_pos: int) -> int:
        return self.speech_index[display_pos]


@dataclass(frozen=True)
class Script:
    product_id: str
    lines: tuple[Line, ...] = field(default_factory=tuple)
