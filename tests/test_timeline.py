"""The show timeline: lines and cues placed on the one media clock."""
from __future__ import annotations

from overlay.state import CardInfo, StockInfo
from script_gen.script import Cue, Line
from studio.clock import SAMPLES_PER_FRAME
from studio.timeline import (
    BURST_FRAMES,
    LEAD_IN,
    SEGMENT_GAP,
    SegmentPlan,
    SpokenLine,
    Timeline,
    glance,
)


def line(text: str, cues: tuple[Cue, ...] = (), pause_ms: int = 400) -> Line:
    return Line(text, text, tuple(range(len(text) + 1)), cues, pause_ms)


CARD_A = CardInfo("a", "耳机", "399", "199", "满199减20", 1)
CARD_B = CardInfo("b", "面霜", "299", "159", None, 2)


def two_segments() -> Timeline:
    countdown = line("3、2、1，上链接！", (
        Cue("countdown", 0, "a", 3), Cue("countdown", 2, "a", 2), Cue("countdown", 4, "a", 1), Cue("link_up", 6, "a")),
        pause_ms=200)
    a = SegmentPlan("a", (
        SpokenLine(line("大家好", (Cue("show_card", 0, "a"),)), 48_000, (0,)),
        SpokenLine(countdown, 96_000, (0, 24_000, 48_000, 72_000)),
        SpokenLine(line("手慢无", (Cue("hide_card", 3, "a"),)), 24_000, (24_000,)),
    ), CARD_A, StockInfo(500, 500))
    b = SegmentPlan("b", (
        SpokenLine(line("第二款", (Cue("show_card", 0, "b"), Cue("hide_card", 3, "b"))), 30_000, (0, 30_000)),
    ), CARD_B)
    return Timeline([a, b])


def test_lines_follow_each_other_with_pauses_and_segment_gap():
    t = two_segments()
    starts = [ln.start for ln in t.lines]
    assert starts[0] == LEAD_IN
    assert starts[1] == LEAD_IN + 48_000 + 400 * 48
    assert starts[2] == starts[1] + 96_000 + 200 * 48
    assert starts[3] == starts[2] + 24_000 + 400 * 48 + SEGMENT_GAP
    assert t.total_samples % SAMPLES_PER_FRAME == 0
    assert t.total_samples > t.lines[-1].shown_until


def test_events_land_on_the_spoken_character():
    t = two_segments()
    link = next(e for e in t.events if e.kind == "link_up")
    assert link.sample == t.lines[1].start + 72_000
    assert link.frame == link.sample // SAMPLES_PER_FRAME
    digits = [e.value for e in t.events if e.kind == "countdown"]
    assert digits == [3, 2, 1]


def test_overlay_state_through_the_show():
    t = two_segments()
    ev = {(e.kind, e.product_id, e.value): e for e in t.events}
    assert t.overlay_state(0).card is None
    assert t.overlay_state(0).subtitle is None
    shown = t.overlay_state(ev[("show_card", "a", None)].frame)
    assert shown.card == CARD_A and shown.card_age == 0 and shown.stock == StockInfo(500, 500)
    assert shown.subtitle == "大家好"
    two = t.overlay_state(ev[("countdown", "a", 2)].frame + 3)
    assert two.countdown == 2 and two.countdown_age == 3 and two.burst_age is None
    link_frame = ev[("link_up", "a", None)].frame
    before, at = t.overlay_state(link_frame - 1), t.overlay_state(link_frame)
    assert before.countdown == 1 and before.burst_age is None
    assert at.countdown is None and at.burst_age == 0
    assert t.overlay_state(link_frame + BURST_FRAMES).burst_age is None
    hidden = t.overlay_state(ev[("hide_card", "a", None)].frame)
    assert hidden.card is None and hidden.stock is None
    second = t.overlay_state(ev[("show_card", "b", None)].frame + 1)
    assert second.card == CARD_B and second.stock is None and second.card_age == 1


def test_random_access_matches_a_sequential_walk():
    t = two_segments()
    states = [t.overlay_state(n) for n in range(t.frames)]
    for n in (t.frames - 1, 0, t.frames // 2, 7):
        assert t.overlay_state(n) == states[n]


def test_subtitle_is_gone_in_the_gap_between_segments():
    t = two_segments()
    gap_frame = (t.lines[2].shown_until + t.lines[3].start) // 2 // SAMPLES_PER_FRAME
    assert t.line_at(gap_frame) is None
    assert t.overlay_state(gap_frame).subtitle is None


def test_host_glances_at_the_card_then_back():
    t = two_segments()
    card = next(e for e in t.events if e.kind == "show_card")
    values = [glance(t, card.frame + k) for k in range(40)]
    assert values[0] > 0 and max(values) == 1.0 and values[-1] == 0.0
    assert glance(t, 0) == 0.0
