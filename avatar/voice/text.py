"""Where the marks go in a line: CJK characters (one syllable each) and non-CJK words.

Shared by every engine, so a mark means the same thing whoever spoke the line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from avatar.voice.base import Mark

_CJK = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_WORD = r"[A-Za-z0-9]+(?:['.][A-Za-z0-9]+)*"
SEGMENT = re.compile(rf"(?P<han>[{_CJK}]+)|(?P<word>{_WORD})|(?P<other>.)", re.DOTALL)

@dataclass(frozen=True)
class Token:
    """One markable unit of a line: a CJK character or a non-CJK word."""

    pos: int  # index in the text handed to synthesize()
    text: str
    kind: str  # "syllable" | "word"


def halfwidth(text: str) -> str:
    """Full-width ASCII (１５，ＡＢ) -> ASCII, one char for one char so positions hold."""
    return "".join(chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in text)


def tokenize(text: str) -> list[Token]:
    """The positions that get a Mark: every CJK character and each non-CJK word start."""
    tokens: list[Token] = []
    for m in SEGMENT.finditer(halfwidth(text)):
        if m.lastgroup == "han":
            tokens += [Token(m.start() + k, c, "syllable") for k, c in enumerate(m.group())]
        elif m.lastgroup == "word":
            tokens.append(Token(m.start(), m.group(), "word"))
    return tokens


def fill_missing(samples: list[int | None], end: int) -> list[int]:
    """Fill unknown mark samples by linear interpolation over their neighbours.

    With nothing known the marks are spread evenly over [0, end).
    """
    known = [i for i, s in enumerate(samples) if s is not None]
    if not known:
        return [end * i // max(1, len(samples)) for i in range(len(samples))]
    filled = np.interp(range(len(samples)), known, [samples[i] for i in known])
    return [int(round(v)) for v in filled]


def build_marks(tokens: list[Token], samples: list[int], length: int) -> tuple[Mark, ...]:
    """Marks clamped into the audio and made non-decreasing."""
    clamped = np.maximum.accumulate(np.clip(samples, 0, max(0, length - 1))) if samples else []
    return tuple(Mark(t.pos, int(s), t.kind) for t, s in zip(tokens, clamped))
