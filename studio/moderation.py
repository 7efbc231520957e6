"""Comment moderation and like aggregation for the live room.

Pure logic: the caller passes the time in, so the rules are testable without sleeping
and the same policy serves any transport. Text is never escaped or interpreted here:
pages render comments as text, so "<script>" is just eight characters.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from script_gen.lint import lint

RATE_WINDOW = 10.0  # seconds; per_viewer_per_10s refers to this window
ZWJ = "\u200d"  # kept: emoji sequences (👨‍👩‍👧) need it

# Insults, off-platform diversion spam (the costly kind in a sales room) and a few profanities.
DEFAULT_BANNED: tuple[str, ...] = (
    "傻逼", "煞笔", "sb", "脑残", "智障", "垃圾主播", "骗子主播", "去死吧",
    "加微信", "加我微信", "微信号", "威信", "薇信", "vx", "wx", "加qq", "qq群", "私聊", "私信我",
    "操你", "草泥马", "他妈的", "fuck", "shit",
)

EMPTY = "评论不能为空"
TOO_FAST = "发言太快了，请稍后再试"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    text: str  # cleaned (and masked when ok)
    error: str | None = None


def clean(text: str) -> str:
    """Strip, turn control whitespace into spaces, drop other control/format characters.

    Format characters include zero-width spaces and bidi overrides, which hide banned words or
    flip how a comment reads; ZWJ stays so emoji sequences survive.
    """
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cc":
            if ch.isspace():
                out.append(" ")
        elif cat != "Cf" or ch == ZWJ:
            out.append(ch)
    return "".join(out).strip()


def _fold(text: str) -> str:
    """Same-length lowercase, full-width-to-ASCII view of `text`, so matches map back to positions."""
    out = []
    for ch in text:
        n = unicodedata.normalize("NFKC", ch).lower()
        out.append(n if len(n) == 1 else ch)
    return "".join(out)


def _word_pattern(word: str) -> str:
    # Up to two spaces or punctuation marks between characters still match ("加 微 信", "v.x");
    # latin words must stand alone so "usb" keeps its "sb".
    body = r"[\s\W_]{0,2}".join(re.escape(c) for c in word)
    if word.isascii() and word.isalnum():
        return rf"(?<![a-z]){body}(?![a-z])"
    return body


def compile_banned(words: Iterable[str]) -> re.Pattern[str] | None:
    folded = sorted({_fold(w.strip()) for w in words if w.strip()}, key=len, reverse=True)
    if not folded:
        return None
    return re.compile("|".join(_word_pattern(w) for w in folded))


def mask(text: str, banned: re.Pattern[str] | None) -> str:
    """Replace every banned span with as many '*' as it has characters."""
    if banned is None:
        return text
    spans = [m.span() for m in banned.finditer(_fold(text))]
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        out += [text[pos:start], "*" * (end - start)]
        pos = end
    out.append(text[pos:])
    return "".join(out)


@dataclass
class _Bucket:
    tokens: float
    at: float


class CommentPolicy:
    """Length, emptiness, per-viewer rate (token bucket) and banned-word masking.

    A bucket refills fully after RATE_WINDOW idle seconds, so idle viewers are forgotten
    (swept once a window): memory follows the viewers who spoke recently, not all viewers ever.
    """

    def __init__(
        self,
        max_len: int = 100,
        per_viewer_per_10s: int = 5,
        banned: Iterable[str] = DEFAULT_BANNED,
    ) -> None:
        if max_len < 1 or per_viewer_per_10s < 1:
            raise ValueError("max_len and per_viewer_per_10s must be at least 1")
        self.max_len = max_len
        self._burst = float(per_viewer_per_10s)
        self._refill = per_viewer_per_10s / RATE_WINDOW  # tokens a second
        self._banned = compile_banned(banned)
        self._buckets: dict[str, _Bucket] = {}
        self._swept_at = float("-inf")

    @property
    def tracked_viewers(self) -> int:
        return len(self._buckets)

    def check(self, viewer_id: str, text: str, now: float) -> Verdict:
        cleaned = clean(text)
        if not cleaned:
            return Verdict(False, cleaned, EMPTY)
        if len(cleaned) > self.max_len:
            return Verdict(False, cleaned, f"评论太长了（最多{self.max_len}字）")
        if not self._take(viewer_id, now):
            return Verdict(False, cleaned, TOO_FAST)
        return Verdict(True, mask(cleaned, self._banned))

    def clean_nickname(self, name: str) -> str:
        """A nickname fit to be said on air: banned words and ad-law claims masked (the host reads
        "@昵称" aloud and burns it into the video, so "@全网最低价" would be the brand's claim)."""
        text = mask(clean(name), self._banned)
        for finding in lint([text]):
            text = text[:finding.start] + "*" * (finding.end - finding.start) + text[finding.end:]
        return text if text.strip("* ") else "观众"

    def _take(self, viewer_id: str, now: float) -> bool:
        self._sweep(now)
        b = self._buckets.get(viewer_id)
        if b is None:
            b = self._buckets[viewer_id] = _Bucket(self._burst, now)
        else:
            b.tokens = min(self._burst, b.tokens + max(0.0, now - b.at) * self._refill)
            b.at = now
        if b.tokens < 1.0:
            return False
        b.tokens -= 1.0
        return True

    def _sweep(self, now: float) -> None:
        if now - self._swept_at < RATE_WINDOW:
            return
        self._swept_at = now
        idle = [v for v, b in self._buckets.items() if now - b.at >= RATE_WINDOW]
        for v in idle:
            del self._buckets[v]


class LikeCounter:
    """Sums a room's likes so a flood of taps becomes one throttled `likes` broadcast."""

    def __init__(self) -> None:
        self._total = 0
        self._sent = 0

    @property
    def total(self) -> int:
        return self._total

    def add(self, n: int = 1) -> None:
        if n < 1:
            raise ValueError(f"like count must be positive, got {n}")
        self._total += n

    def take_total_if_changed(self) -> int | None:
        """The total when it moved since the last take, else None (nothing to broadcast)."""
        if self._total == self._sent:
            return None
        self._sent = self._total
        return self._total
