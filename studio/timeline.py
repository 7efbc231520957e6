"""The show timeline: where every line and cue falls on the one media clock.

Pure logic. Input: the script lines of each segment with how long each one
sounds and where its cues land inside it. Output: sample positions for lines
and events, and what the overlays show on any frame (random access, so a live
runner and an offline renderer ask the same questions).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from avatar.host.lips import REST, MouthShape, VisemeTrack, nod_after
from overlay.state import CardInfo, OverlayState, StockInfo
from script_gen.script import CueKind, Line
from studio.clock import (
    SAMPLES_PER_FRAME,
    frame_of_sample,
    frames_for_samples,
    seconds_to_samples,
)

LEAD_IN = seconds_to_samples(0.6)  # silence before the first line
SEGMENT_GAP = seconds_to_samples(1.0)  # extra silence between products
TAIL = seconds_to_samples(1.0)  # silence after the last line
BURST_FRAMES = 50  # "上链接！" stays 2 s


@dataclass(frozen=True)
class SpokenLine:
    """A line as the voice said it: its length and where each cue landed, in samples from its start."""

    line: Line
    samples: int
    cue_offsets: tuple[int, ...]  # one per line.cues entry
    visemes: VisemeTrack | None = None  # the lips' shapes (None: the audio level alone moves the mouth)


@dataclass(frozen=True)
class SegmentPlan:
    product_id: str
    lines: tuple[SpokenLine, ...]
    card: CardInfo | None = None
    stock: StockInfo | None = None  # shown under the card when the segment has a flash sale


@dataclass(frozen=True)
class PlacedLine:
    start: int  # first sample of speech
    end: int  # sample after the last one of speech
    shown_until: int  # subtitle stays through the pause after the line
    text: str
    segment: int


@dataclass(frozen=True)
class Event:
    sample: int
    kind: CueKind
    product_id: str
    segment: int
    value: int | None = None

    @property
    def frame(self) -> int:
        """The frame in which a viewer sees the event."""
        return frame_of_sample(self.sample)


class Timeline:
    def __init__(self, segments: list[SegmentPlan]) -> None:
        self.segments = tuple(segments)
        lines: list[PlacedLine] = []
        events: list[Event] = []
        tracks: list[VisemeTrack | None] = []
        nods: list[int] = []
        cursor = LEAD_IN
        for si, seg in enumerate(segments):
            if si:
                cursor += SEGMENT_GAP
            for spoken in seg.lines:
                start = cursor
                end = start + spoken.samples
                cursor = end + round(spoken.line.pause_after_ms * 48)
                lines.append(PlacedLine(start, end, cursor, spoken.line.text, si))
                tracks.append(spoken.visemes)
                if spoken.visemes is not None:
                    nods += [frame_of_sample(start + s) for s in spoken.visemes.sentence_ends]
                for cue, offset in zip(spoken.line.cues, spoken.cue_offsets, strict=True):
                    sample = start + min(max(offset, 0), spoken.samples)
                    events.append(Event(sample, cue.kind, cue.product_id, si, cue.value))
        self.total_samples = frames_for_samples(cursor + TAIL) * SAMPLES_PER_FRAME
        self.lines = tuple(lines)
        self.events = tuple(sorted(events, key=lambda e: e.sample))
        self._line_starts = [ln.start for ln in self.lines]
        self._tracks = tuple(tracks)
        self._nod_frames = sorted(nods)
        self._event_frames = [e.frame for e in self.events]

    @property
    def frames(self) -> int:
        return self.total_samples // SAMPLES_PER_FRAME

    def line_at(self, frame: int) -> PlacedLine | None:
        """The line whose subtitle is up during `frame`."""
        s = frame * SAMPLES_PER_FRAME
        i = bisect.bisect_right(self._line_starts, s + SAMPLES_PER_FRAME - 1) - 1
        if i >= 0 and s < self.lines[i].shown_until:
            return self.lines[i]
        return None

    def viseme(self, frame: int) -> MouthShape | None:
        """The lips' shape the words ask for at the middle of `frame` (REST between lines, None for a line
        whose voice gave no marks)."""
        s = frame * SAMPLES_PER_FRAME + SAMPLES_PER_FRAME // 2
        i = bisect.bisect_right(self._line_starts, s) - 1
        if i < 0 or s >= self.lines[i].end:
            return REST
        track = self._tracks[i]
        return None if track is None else track.at(s - self.lines[i].start)

    def nod(self, frame: int) -> float:
        """How far (0..1) the host's head is tipped down in a nod at a sentence's end."""
        i = bisect.bisect_right(self._nod_frames, frame) - 1
        return nod_after(frame - self._nod_frames[i]) if i >= 0 else 0.0

    def events_until(self, frame: int) -> tuple[Event, ...]:
        """Every event a viewer has seen by the end of `frame`."""
        return self.events[: bisect.bisect_right(self._event_frames, frame)]

    def overlay_state(self, frame: int) -> OverlayState:
        card = card_since = stock = None
        countdown = countdown_since = burst_since = None
        for ev in self.events_until(frame):
            seg = self.segments[ev.segment]
            if ev.kind == "show_card":
                card, card_since, stock = seg.card, ev.frame, seg.stock
            elif ev.kind == "hide_card":
                card = stock = countdown = burst_since = None
            elif ev.kind == "countdown":
                countdown, countdown_since = ev.value, ev.frame
            elif ev.kind == "link_up":
                countdown, burst_since = None, ev.frame
        if burst_since is not None and frame - burst_since >= BURST_FRAMES:
            burst_since = None
        line = self.line_at(frame)
        return OverlayState(
            card=card,
            card_age=frame - card_since if card is not None and card_since is not None else 0,
            stock=stock if card is not None else None,
            countdown=countdown,
            countdown_age=frame - countdown_since if countdown is not None and countdown_since is not None else 0,
            burst_age=frame - burst_since if burst_since is not None else None,
            subtitle=line.text if line else None,
        )


GLANCE_FRAMES = 30  # the host looks toward the card for 1.2 s at card and link-up cues
GLANCE_RAMP = 6  # frames the head takes to turn toward the card and back


def glance_after(age: int) -> float:
    """How far (0..1) the host looks toward the card `age` frames after a card or link-up cue."""
    if not 0 <= age < GLANCE_FRAMES:
        return 0.0
    return min(1.0, (age + 1) / GLANCE_RAMP, (GLANCE_FRAMES - age) / GLANCE_RAMP)


def glance(timeline: Timeline, frame: int) -> float:
    """How far (0..1) the host's gaze is turned toward the product card on `frame`."""
    for ev in reversed(timeline.events_until(frame)):
        if ev.kind in ("show_card", "link_up", "gesture"):
            return glance_after(frame - ev.frame)
    return 0.0
