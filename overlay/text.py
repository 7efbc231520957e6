"""Chinese text as alpha masks, with line wrapping and fitting.

Uses OpenCV 5's built-in "sans" font (CJK included). Its CJK glyphs have a
single weight, so bold is faked by thickening the glyphs at 2x and area
downsampling, which keeps the edges smooth.

A text mask is one line box 1.3 * px tall whose vertical middle is the visual
middle of the glyphs, so centring the mask centres the text.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

_FONT = cv2.FontFace("sans")
_ASCENT = 1.05  # baseline sits this many px-sizes below the mask top
LINE_BOX = 1.3  # mask height in px-sizes
ELLIPSIS = "…"
# Characters that must not start a line (Chinese line-breaking rule, kinsoku).
_NO_LINE_START = set("，。！？、；：）》」』】〕…%,.!?;:)]}·~～")


def ascent(px: int) -> int:
    """Rows from the top of a text mask of size `px` down to its baseline."""
    return round(_ASCENT * px)


def measure(text: str, px: int, weight: int = 400) -> int:
    """Width in pixels of `text` set at font size `px`."""
    if not text:
        return 0
    return int(cv2.getTextSize((0, 0), text, (0, 0), _FONT, px, weight)[2])


def text_mask(text: str, px: int, weight: int = 400, bold: float = 0.0) -> np.ndarray:
    """One line of text as a float 0..1 mask trimmed to its ink left and right.

    `bold` thickens every stroke by that many pixels.
    """
    ss = 2 if bold > 0 else 1
    size = px * ss
    grow = round(bold * ss)
    margin = grow + ss * 2
    w = measure(text, size, weight) + 2 * margin
    h = round(LINE_BOX * size)
    big = np.zeros((h, w), np.uint8)
    cv2.putText(big, text, (margin, round(_ASCENT * size)), (255, 255, 255), _FONT, size, weight)
    if grow > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        big = cv2.dilate(big, k)
    if ss > 1:
        big = cv2.resize(big, (w // ss, h // ss), interpolation=cv2.INTER_AREA)
    cols = np.flatnonzero(big.max(axis=0))
    if len(cols):
        big = big[:, cols[0]:cols[-1] + 1]
    return big.astype(np.float32) / 255.0


def text_block(lines: Sequence[str], px: int, weight: int = 400, bold: float = 0.0,
               spacing: float = 1.0, centred: bool = True) -> np.ndarray:
    """Several lines stacked as one mask, centred or left-aligned; `spacing` scales the line pitch."""
    masks = [text_mask(line, px, weight, bold) for line in lines]
    pitch = round(LINE_BOX * px * spacing)
    w = max(m.shape[1] for m in masks)
    h = pitch * (len(masks) - 1) + max(m.shape[0] for m in masks)
    out = np.zeros((h, w), np.float32)
    for i, m in enumerate(masks):
        x, y = (w - m.shape[1]) // 2 if centred else 0, i * pitch
        region = out[y:y + m.shape[0], x:x + m.shape[1]]
        np.maximum(region, m, out=region)
    return out


def _units(text: str) -> list[str]:
    """Unbreakable pieces: one CJK character, or a run of Latin letters/digits, plus trailing punctuation."""
    units: list[str] = []
    for ch in text:
        latin = ch.isascii() and (ch.isalnum() or ch in ".%+-/")
        if units and ch in _NO_LINE_START or units and latin and units[-1][-1].isascii() and units[-1][-1].isalnum():
            units[-1] += ch
        else:
            units.append(ch)
    return units


def wrap(text: str, max_width: int, max_lines: int, width_of: Callable[[str], int]) -> list[str] | None:
    """Greedy line breaking (at least one line); None when the text needs more than `max_lines` lines."""
    lines: list[str] = []
    current = ""
    for unit in _units(text.strip()):
        pieces = [unit] if width_of(unit) <= max_width else list(unit)
        for piece in pieces:
            candidate = (current + piece) if current else piece.lstrip()
            if current and width_of(candidate.rstrip()) > max_width:
                lines.append(current.rstrip())
                current = piece.lstrip()
            else:
                current = candidate
    if current.strip() or not lines:
        lines.append(current.rstrip())
    return lines if len(lines) <= max_lines else None


def wrap_balanced(text: str, max_width: int, max_lines: int,
                  width_of: Callable[[str], int]) -> list[str] | None:
    """Like wrap, but with the narrowest width that needs no extra line, so lines come out even."""
    lines = wrap(text, max_width, max_lines, width_of)
    if lines is None or len(lines) < 2:
        return lines
    lo, hi = max(width_of(line) for line in lines) // len(lines), max_width
    while lo < hi:
        mid = (lo + hi) // 2
        trial = wrap(text, mid, len(lines), width_of)
        if trial is None:
            lo = mid + 1
        else:
            hi = mid
    return wrap(text, lo, len(lines), width_of)


def truncate(text: str, max_width: int, width_of: Callable[[str], int]) -> str:
    """`text` cut and ended with "…" so that it fits `max_width`."""
    if width_of(text) <= max_width:
        return text
    for n in range(len(text) - 1, 0, -1):
        candidate = text[:n].rstrip() + ELLIPSIS
        if width_of(candidate) <= max_width:
            return candidate
    return ELLIPSIS


def fit(text: str, max_width: int, max_lines: int, sizes: Sequence[int],
        weight: int = 400) -> tuple[int, list[str]]:
    """The largest size in `sizes` (descending) at which `text` wraps evenly into `max_lines`.

    If even the smallest size overflows, the last line is truncated with "…".
    """
    for px in sizes:
        lines = wrap_balanced(text, max_width, max_lines, _width_at(px, weight))
        if lines is not None:
            return px, lines
    px = sizes[-1]
    width_of = _width_at(px, weight)
    lines = wrap(text, max_width, len(text) + 1, width_of) or [""]
    head = lines[:max_lines]
    head[-1] = truncate("".join(lines[max_lines - 1:]), max_width, width_of)
    return px, head


def _width_at(px: int, weight: int) -> Callable[[str], int]:
    return lambda s: measure(s, px, weight)
