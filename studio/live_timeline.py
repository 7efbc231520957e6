"""The live show timeline: lines are queued while the stream runs, and frames come out one at a time.

Pure logic, no I/O and no threads. Unlike the offline Timeline nothing is placed in advance: a
line starts on the sample after the previous line's pause (mid-frame if so), or on the next frame
when the host was idle. Cues fire when playback reaches their sample, so a pause (the buyer's)
delays them with the voice, and every event carries the frame a viewer first sees it in.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from avatar.host.lips import REST, MouthShape, VisemeTrack, nod_after
from avatar.voice.base import Speech
from overlay.state import BannerInfo, CardInfo, OverlayState, StockInfo
from script_gen.script import Line
from studio.clock import FPS, SAMPLES_PER_FRAME
from studio.timeline import BURST_FRAMES, glance_after

EVENT_KINDS = ("show_card", "countdown", "link_up", "hide_card")  # cues viewers see; "gesture" only turns the head


@dataclass(frozen=True)
class LiveEvent:
    kind: str  # one of EVENT_KINDS, or "gesture" when a line with a gesture cue begins
    frame: int  # the first frame that shows it
    product_id: str
    value: int | None = None  # the countdown digit
    text: str | None = None  # gesture: the line the host begins (an answer, a buyer's line)

    @property
    def media_time(self) -> float:
        return self.frame / FPS


@dataclass(frozen=True)
class FrameWork:
    """Everything needed to draw and encode one frame."""

    frame: int
    audio: np.ndarray  # SAMPLES_PER_FRAME int16 samples
    overlay: OverlayState
    events: tuple[LiveEvent, ...]  # the events appearing in this frame
    speaking: bool  # some of this frame's audio is a line's speech (not a pause, not idle)
    glance: float  # 0..1: how far the host looks toward the card (as studio.timeline.glance)
    viseme: MouthShape | None = REST  # the lips' shape the words ask for mid-frame (None: the voice gave no marks)
    nod: float = 0.0  # 0..1: the host's nod at a sentence's end


@dataclass(frozen=True)
class _Cue:
    offset: int  # samples from the start of the line
    kind: str
    product_id: str
    value: int | None


CLAUSE_ENDS = frozenset("，。！？；、,.!?;")
# An urgent line (an answer) waits for the next clause end only if it comes within this; otherwise
# the host stops at the next word end and later says the interrupted clause again from its start.
CLAUSE_WAIT = 24_000  # samples (0.5 s)


class _Playing:
    """A line being played: its speech, then its pause; `pos` counts the samples played so far."""

    def __init__(self, line: Line, speech: Speech, segment: int | None, urgent: bool = False,
                 banner: BannerInfo | None = None) -> None:
        self.line = line
        self.banner = banner
        self.pcm = speech.pcm
        self.spoken = speech.samples  # where the speech ends and the pause begins
        self.total = speech.samples + round(line.pause_after_ms * 48)
        self.segment = segment
        self.urgent = urgent  # an answer or a buyer's line: never cut short itself
        # clause ends (after ，。！？…): where the host may stop to take an urgent line, then go on;
        # word ends (voice marks) are the fallback stops when a clause end is far. Never inside the
        # countdown: "3、2、1，上链接！" is said in one breath.
        self.counting = any(c.kind in ("countdown", "link_up") for c in line.cues)
        self.breaks = [] if self.counting else sorted({
            speech.sample_at(line.speech_pos(i + 1)) for i, ch in enumerate(line.text)
            if ch in CLAUSE_ENDS and 0 < i + 1 < len(line.text)
        })
        self.word_ends = [] if self.counting else sorted({m.sample for m in speech.marks if 0 < m.sample < self.spoken})
        cues = (
            _Cue(min(max(speech.sample_at(line.speech_pos(c.at)), 0), speech.samples), c.kind, c.product_id, c.value)
            for c in line.cues
        )
        self.cues = sorted(cues, key=lambda c: c.offset)
        self.next_cue = 0
        self.pos = 0
        self.visemes = VisemeTrack.of(line.speech, speech)

    def stop_for_urgent(self) -> int:
        """Where to stop so an urgent line can be said: the end of the speech or the next clause end when
        it is near, else the next word end (the pause after the speech is cut short at once)."""
        if self.counting:
            return self.total
        if self.pos >= self.spoken:
            return self.pos
        near = next(b for b in (*self.breaks, self.spoken) if b >= self.pos)
        if near - self.pos <= CLAUSE_WAIT:
            return near
        return next((w for w in self.word_ends if w >= self.pos), near)

    def rewind_to_clause(self) -> None:
        """Stopped inside a clause: go back to its start, so the viewer hears the clause whole after the answer."""
        self.pos = max((b for b in self.breaks if b <= self.pos), default=0)


class LiveTimeline:
    """Queued lines played back to back over a stream that never stops (silence when nothing is queued)."""

    def __init__(self, cards: dict[str, CardInfo], stocks: dict[str, StockInfo]) -> None:
        self._cards = dict(cards)
        self._stocks = dict(stocks)
        self._queue: deque[_Playing] = deque()
        self._urgent: deque[_Playing] = deque()  # played right after the current line, in order
        self._current: _Playing | None = None
        self._link_ups: list[str] = []  # products the buyer linked up, due on the next frame
        self._paused = False
        self._frame = 0
        self._segment: int | None = None
        self._card: CardInfo | None = None
        self._card_since = 0
        self._stock: StockInfo | None = None
        self._countdown: int | None = None
        self._countdown_since = 0
        self._burst_since: int | None = None
        self._glance_since: int | None = None
        self._nod_since: int | None = None

    # -- commands ----------------------------------------------------------------------------

    def enqueue(self, line: Line, speech: Speech, *, front: bool = False, segment: int | None = None,
                banner: BannerInfo | None = None) -> None:
        """Queue a line; `front` plays it as soon as the current line reaches a near clause end or else a
        word end (after earlier front lines), and the rest of the interrupted line follows it, from the
        start of the clause it was cut in.

        `segment` labels the line (the runner's segment number) so `segment` can tell what is playing;
        `banner` (an answer's askers and text) is burnt in while the line plays, pause included.
        """
        for cue in line.cues:
            if cue.kind == "show_card" and cue.product_id not in self._cards:
                raise ValueError(f"line {line.text!r}: no card for product {cue.product_id!r}")
        (self._urgent if front else self._queue).append(_Playing(line, speech, segment, urgent=front, banner=banner))

    def link_up_now(self, product_id: str) -> None:
        """The buyer's 上链接: the card (if not already up) and the burst appear on the next frame."""
        if product_id not in self._cards:
            raise ValueError(f"no card for product {product_id!r}")
        self._link_ups.append(product_id)

    def set_stock(self, product_id: str, left: int) -> None:
        """Claims change what is left: the stock bar shows it from the next frame."""
        total = self._stocks[product_id].total
        self._stocks[product_id] = StockInfo(max(0, left), total)
        if self._card is not None and self._card.product_id == product_id:
            self._stock = self._stocks[product_id]

    def clear_queue(self) -> None:
        """Drop every line not yet started; the current one finishes."""
        self._queue.clear()
        self._urgent.clear()

    def pause(self) -> None:
        """Silence and an idle host from the next frame; the current line resumes where it stopped."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    @property
    def queued(self) -> int:
        """Lines waiting (not counting the one playing)."""
        return len(self._queue) + len(self._urgent)

    @property
    def answering(self) -> bool:
        """An urgent line (an answer, a buyer's line) is playing or waiting to."""
        return bool(self._urgent) or (self._current is not None and self._current.urgent)

    @property
    def frame(self) -> int:
        """The number of the next frame `next_frame` produces (= frames produced so far)."""
        return self._frame

    @property
    def segment(self) -> int | None:
        """The segment label of the latest line started that had one (lines without keep it)."""
        return self._segment

    # -- frames ------------------------------------------------------------------------------

    def next_frame(self) -> FrameWork:
        n = self._frame
        audio = np.zeros(SAMPLES_PER_FRAME, np.int16)
        events = self._forced_link_ups(n)
        speaking = False
        viseme: MouthShape | None = REST
        filled = 0
        subtitle_line = None
        banner = None
        while filled < SAMPLES_PER_FRAME and not self._paused:
            cur = self._current or self._start_next()
            if cur is None:
                break
            end = cur.total
            if self._urgent and not cur.urgent:  # an answer is waiting: stop at a clause or word end
                end = cur.stop_for_urgent()
            take = min(SAMPLES_PER_FRAME - filled, end - cur.pos)
            voiced = cur.pcm[cur.pos : cur.pos + take]
            audio[filled : filled + voiced.size] = voiced
            speaking = speaking or voiced.size > 0
            if filled <= SAMPLES_PER_FRAME // 2 < filled + take:  # the line playing mid-frame shapes the lips
                viseme = cur.visemes.at(cur.pos + SAMPLES_PER_FRAME // 2 - filled)
            if any(cur.pos < e <= cur.pos + take for e in cur.visemes.sentence_ends):
                self._nod_since = n
            cur.pos += take
            filled += take
            subtitle_line, banner = cur.line, cur.banner
            done = cur.pos >= cur.total or (cur.pos >= end and cur.pos >= cur.spoken)  # a cut pause ends the line
            while cur.next_cue < len(cur.cues) and (cur.cues[cur.next_cue].offset < cur.pos or done):
                cue = cur.cues[cur.next_cue]
                cur.next_cue += 1
                if cue.kind in EVENT_KINDS:
                    events.append(self._fire(cue.kind, cue.product_id, n, cue.value))
                elif cue.kind == "gesture":  # the host turns to the card; viewers learn a line began
                    self._glance_since = n
                    events.append(LiveEvent("gesture", n, cue.product_id, text=cur.line.text))
            if done:
                self._current = None
            elif cur.pos >= end:  # suspended: the urgent line, then the rest of this one
                if end not in cur.breaks:
                    cur.rewind_to_clause()
                self._queue.appendleft(cur)
                self._current = None
        overlay = OverlayState(
            card=self._card,
            card_age=n - self._card_since if self._card is not None else 0,
            stock=self._stock if self._card is not None else None,
            countdown=self._countdown,
            countdown_age=n - self._countdown_since if self._countdown is not None else 0,
            burst_age=self._burst_age(n),
            subtitle=subtitle_line.text if subtitle_line is not None else None,
            banner=banner,
        )
        self._frame += 1
        nod = 0.0 if self._nod_since is None else nod_after(n - self._nod_since)
        return FrameWork(n, audio, overlay, tuple(events), speaking, self._glance(n), viseme, nod)

    def _start_next(self) -> _Playing | None:
        source = self._urgent or self._queue
        if not source:
            return None
        self._current = source.popleft()
        if self._current.segment is not None:
            self._segment = self._current.segment
        return self._current

    def _forced_link_ups(self, n: int) -> list[LiveEvent]:
        out = []
        for pid in self._link_ups:
            if self._card is None or self._card.product_id != pid:
                out.append(self._fire("show_card", pid, n, None))
            out.append(self._fire("link_up", pid, n, None))
        self._link_ups.clear()
        return out

    def _fire(self, kind: str, product_id: str, n: int, value: int | None) -> LiveEvent:
        """Apply the event to the overlay state (as Timeline.overlay_state does) and return it."""
        if kind == "show_card":
            self._card, self._card_since, self._stock = self._cards[product_id], n, self._stocks.get(product_id)
            self._glance_since = n
        elif kind == "hide_card":
            self._card = self._stock = self._countdown = self._burst_since = None
        elif kind == "countdown":
            self._countdown, self._countdown_since = value, n
        elif kind == "link_up":
            self._countdown, self._burst_since, self._glance_since = None, n, n
        return LiveEvent(kind, n, product_id, value)

    def _burst_age(self, n: int) -> int | None:
        if self._burst_since is None or n - self._burst_since >= BURST_FRAMES:
            return None
        return n - self._burst_since

    def _glance(self, n: int) -> float:
        return 0.0 if self._glance_since is None else glance_after(n - self._glance_since)
