"""How far the host's mouth opens on each video frame, from the show's audio.

Frame n looks only at its own samples [1920n, 1920n + 1920), so the lips can be
neither early nor late by more than the frame itself. Loudness is judged against
the speaker's recent level (not an absolute scale), so quiet and loud voices both
open the mouth with their syllables, and the mouth shuts in every pause.
"""
from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from pypinyin import Style, lazy_pinyin

from avatar.voice.base import Mark, Speech
from avatar.voice.text import Token, tokenize
from studio.clock import FPS, SAMPLES_PER_FRAME

SILENCE_DBFS = -45.0  # below this RMS a frame is a pause: the mouth is shut
LEVEL_WINDOW = 2 * FPS  # frames over which the speech level is averaged (voiced frames only)
LEVEL_FLOOR_DBFS = -30.0  # faint audio never counts as a full voice
SPAN_DB = 21.0  # a frame this far below the speech level (plus headroom) stays shut
HEADROOM_DB = 3.0  # frames this much above the level open fully
RELEASE = 0.5  # a frame keeps at least this share of the previous frame's opening (one frame only)


class MouthFollower:
    """The mouth opening of each frame as its audio arrives, for a live show that has no whole track.

    It is the one definition: mouth_openness runs it over a track, so live and offline lips agree exactly.
    """

    def __init__(self) -> None:
        self._window: deque[float | None] = deque(maxlen=LEVEL_WINDOW)  # dBFS of recent voiced frames, None if silent
        self._last_raw = 0.0

    def next(self, chunk: np.ndarray) -> float:
        """Opening 0..1 of the frame whose samples are `chunk` (int16, up to 1920; missing ones are silence)."""
        samples = np.asarray(chunk, dtype=np.float64).reshape(-1)[:SAMPLES_PER_FRAME]
        mean_square = float(np.dot(samples, samples)) / SAMPLES_PER_FRAME
        db = 10 * math.log10(mean_square / 32768.0**2) if mean_square > 0 else -math.inf
        voiced = db >= SILENCE_DBFS
        self._window.append(db if voiced else None)
        levels = [d for d in self._window if d is not None]
        level = max(sum(levels) / len(levels), LEVEL_FLOOR_DBFS) if levels else LEVEL_FLOOR_DBFS
        raw = min(max((db - level + SPAN_DB - HEADROOM_DB) / SPAN_DB, 0.0), 1.0) if voiced else 0.0
        opening = max(raw, self._last_raw * RELEASE) if voiced else 0.0
        self._last_raw = raw
        return float(np.float32(opening))


def mouth_openness(pcm: np.ndarray, n_frames: int) -> np.ndarray:
    """Mouth opening 0..1 (float32) for frames 0..n_frames-1 of an int16 48 kHz mono track; 0.0 exactly in pauses."""
    pcm = np.asarray(pcm)
    if pcm.ndim != 1:
        raise ValueError(f"mouth_openness needs mono PCM, got shape {pcm.shape}")
    follower = MouthFollower()
    return np.array(
        [follower.next(pcm[n * SAMPLES_PER_FRAME : (n + 1) * SAMPLES_PER_FRAME]) for n in range(n_frames)],
        dtype=np.float32,
    )


# -- visemes: the mouth's shape from what is said ------------------------------------------------


@dataclass(frozen=True)
class MouthShape:
    """What the lips do on one frame: how far they part and how wide they are drawn."""

    open: float = 0.0  # 0 shut .. 1 the pack's max_open
    wide: float = 0.0  # -1 rounded (o, u, ü) .. 0 neutral .. 1 spread (i, e)


REST = MouthShape()
VISEMES: dict[str, MouthShape] = {
    "a": MouthShape(1.0, 0.15),  # open
    "o": MouthShape(0.6, -0.7),  # round
    "u": MouthShape(0.45, -1.0),
    "v": MouthShape(0.4, -0.85),  # ü: rounded, barely open
    "e": MouthShape(0.55, 0.45),  # spread
    "i": MouthShape(0.45, 0.9),
    "buzz": MouthShape(0.4, 0.5),  # the -i of zi, ci, si, zhi, chi, shi, ri
    "closed": MouthShape(0.0, 0.0),  # b p m: lips pressed together
    "f": MouthShape(0.12, 0.2),  # lower lip against the upper teeth
    "word": MouthShape(0.55, 0.0),  # a non-Chinese word or digits: a neutral open mouth
}
_VOWELS = {"a": "a", "o": "o", "e": "e", "i": "i", "u": "u", "v": "v", "ü": "v"}
_OPENNESS = ["a", "o", "e", "u", "i", "v"]  # which vowel of a final carries the syllable
RAMP = 1440  # samples (30 ms) over which the lips move from one shape to the next
LEAD = RAMP // 2  # shapes start this early: the lips form a sound just before it is heard


def syllable_visemes(syllable: str) -> list[tuple[float, str]]:
    """A pinyin syllable (tone number optional) as (share of its duration, viseme) in order.

    "bao3" -> closed lips, then a, then a rounding toward u; "shi4" -> the buzzed i.
    """
    s = "".join(c for c in syllable.lower() if c.isalpha())
    if not s:
        return [(1.0, "word")]
    initial = next((i for i in ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j",
                                "q", "x", "r", "z", "c", "s", "y", "w") if s.startswith(i)), "")
    final = s[len(initial):]
    if initial in ("j", "q", "x", "y") and final.startswith("u"):
        final = "v" + final[1:]  # ju, qu, xu, yu are ü
    if initial == "y" and not final:
        final = "i"
    out: list[tuple[float, str]] = []
    if initial in ("b", "p", "m"):
        out.append((0.25, "closed"))
    elif initial == "f":
        out.append((0.25, "f"))
    if final == "i" and initial in ("z", "c", "s", "zh", "ch", "sh", "r"):
        return out + [(1.0 - sum(w for w, _ in out), "buzz")]
    vowels = [_VOWELS[c] for c in final if c in _VOWELS]
    if final in ("ian", "yan"):
        vowels = ["i", "e"]
    if not vowels:  # syllabic n, m, ng (嗯, 呣): lips near closed or neutral
        return out + [(1.0 - sum(w for w, _ in out), "closed" if s in ("m", "hm") else "f")]
    main = min(vowels, key=_OPENNESS.index)
    k = vowels.index(main)
    left = 1.0 - sum(w for w, _ in out)
    parts = []
    if k > 0:  # a glide before the main vowel: i-a, u-o, ü-e
        parts.append((0.25, vowels[k - 1]))
    parts.append((0.5 if k + 1 < len(vowels) else 0.75 if k > 0 else 1.0, main))
    if k + 1 < len(vowels):  # a glide after it: a-i, a-o, o-u
        parts.append((0.25 if k > 0 else 0.5, vowels[-1]))
    total = sum(w for w, _ in parts)
    return out + [(w / total * left, v) for w, v in parts]


def _syllables(text: str) -> dict[int, str]:
    """Tone-numbered pinyin of each CJK character of `text`, by position (context resolves polyphones)."""
    tokens = [t for t in tokenize(text) if t.kind == "syllable"]
    out: dict[int, str] = {}
    run: list[Token] = []

    def flush() -> None:
        if run:
            pinyin = lazy_pinyin("".join(t.text for t in run), style=Style.TONE3, neutral_tone_with_five=True)
            if len(pinyin) != len(run):
                pinyin = [lazy_pinyin(t.text, style=Style.TONE3)[0] for t in run]
            out.update({t.pos: p for t, p in zip(run, pinyin)})
            run.clear()

    for t in tokens:
        if run and t.pos != run[-1].pos + 1:
            flush()
        run.append(t)
    flush()
    return out


SENTENCE_ENDS = frozenset("。！？!?")


SYLLABLE_MAX = 14_400  # a sentence's last syllable is taken to end at most 0.3 s after its mark


def _sentence_ends(text: str, marks: list[Mark], samples: int) -> tuple[int, ...]:
    """Samples (from the line's start) where each sentence's last syllable ends, the line's end included."""
    positions = [m.pos for m in marks]
    ends = {samples}
    for i, c in enumerate(text):
        k = bisect.bisect_left(positions, i)  # marks[k] is the first after the punctuation
        if c in SENTENCE_ENDS and k > 0:
            last = marks[k - 1].sample + SYLLABLE_MAX
            ends.add(min(last, marks[k].sample if k < len(marks) else samples))
    return tuple(sorted(ends))


class VisemeTrack:
    """The lips' shapes over one spoken line, from its text's pinyin timed by the voice's marks.

    Key shapes are placed per syllable between its mark and the next one; `at(sample)`
    cross-fades between neighbours over RAMP samples, so the mouth glides rather than snaps.
    """

    def __init__(self, text: str, marks: tuple[Mark, ...], samples: int) -> None:
        pinyin = _syllables(text)
        starts: list[int] = []
        shapes: list[MouthShape] = []
        ordered = sorted(marks, key=lambda m: m.sample)
        for i, mark in enumerate(ordered):
            end = ordered[i + 1].sample if i + 1 < len(ordered) else samples
            span = max(end - mark.sample, 1)
            parts = syllable_visemes(pinyin.get(mark.pos, "")) if mark.kind == "syllable" else [(1.0, "word")]
            at = float(mark.sample)
            for share, key in parts:
                starts.append(max(int(at) - LEAD, 0))
                shapes.append(VISEMES[key])
                at += share * span
        self._starts = starts
        self._shapes = shapes
        self.samples = samples
        self.sentence_ends = _sentence_ends(text, ordered, samples)

    @classmethod
    def of(cls, text: str, speech: Speech) -> VisemeTrack:
        """The track of `speech` (which spoke `text`)."""
        return cls(text, speech.marks, speech.samples)

    def at(self, sample: int) -> MouthShape:
        """The shape the lips aim for at `sample` (from the line's start); REST outside the line."""
        if not self._starts or sample < self._starts[0] - RAMP or sample >= self.samples:
            return REST
        k = bisect.bisect_right(self._starts, sample) - 1
        cur = self._shapes[k] if k >= 0 else REST
        prev = self._shapes[k - 1] if k >= 1 else REST
        t = min(1.0, (sample - (self._starts[k] if k >= 0 else 0)) / RAMP) if k >= 0 else 0.0
        return MouthShape(prev.open + (cur.open - prev.open) * t, prev.wide + (cur.wide - prev.wide) * t)


def drive(viseme: MouthShape | None, audio_open: float) -> MouthShape:
    """The mouth of a frame: the viseme's shape, opened as far as the frame's audio allows.

    Audio is master: a silent frame is REST whatever the text says, so the lips can be
    neither early nor late by more than the frame itself; without a viseme (a voice
    without marks) the audio level alone opens a neutral mouth.
    """
    if audio_open <= 0.0:
        return REST
    if viseme is None:
        return MouthShape(audio_open, 0.0)
    return MouthShape(viseme.open * (0.5 + 0.5 * audio_open), viseme.wide * min(1.0, 0.5 + audio_open))


NOD_FRAMES = 18  # a nod at a sentence's end takes 0.72 s: down and back up


def nod_after(age: int) -> float:
    """How far (0..1) the head is tipped down `age` frames after a sentence ends."""
    if not 0 <= age < NOD_FRAMES:
        return 0.0
    return math.sin(math.pi * (age + 0.5) / NOD_FRAMES) ** 2
