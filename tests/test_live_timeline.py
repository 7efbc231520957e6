"""The live timeline: queued lines come out frame by frame as the offline timeline would place them."""
from __future__ import annotations

import numpy as np
import pytest

from avatar.voice.base import Mark, Speech
from overlay.state import CardInfo, StockInfo
from script_gen.builder import make_line
from script_gen.phrases import COUNTDOWN_TEXT
from script_gen.script import Cue, Line
from studio.clock import SAMPLES_PER_FRAME
from studio.live_timeline import FrameWork, LiveTimeline
from studio.timeline import LEAD_IN, SegmentPlan, SpokenLine, Timeline, glance

CUP = CardInfo("cup", "暖言 保温杯", "99", "59", "满50减5", 1)
TEA = CardInfo("tea", "山岚 乌龙茶", "49", "39", None, 2)
CARDS = {"cup": CUP, "tea": TEA}
STOCKS = {"cup": StockInfo(100, 100)}


def spoken(line: Line, level: int, per_char: int = 1500) -> Speech:
    """A constant-level 'voice' (so each line is recognisable in the mix), one mark per character."""
    chars = len(line.speech)
    return Speech(np.full(chars * per_char, level, np.int16), tuple(Mark(i, i * per_char) for i in range(chars)))


def countdown_line(pid: str) -> Line:
    text = COUNTDOWN_TEXT
    cues = [Cue("countdown", text.index(str(v)), pid, v) for v in (3, 2, 1)] + [Cue("link_up", text.index("上"), pid)]
    return make_line(text, cues, pause_after_ms=200)


def segment_lines() -> list[Line]:
    first = "大家好，这款保温杯今天只要¥59！"
    last = "喜欢的宝宝直接拍1号链接！"
    return [
        make_line(first, [Cue("show_card", 0, "cup")], 500),
        countdown_line("cup"),
        make_line(last, [Cue("hide_card", len(last), "cup")], 600),
    ]


def run(tl: LiveTimeline, frames: int) -> list[FrameWork]:
    return [tl.next_frame() for _ in range(frames)]


def levels(works: list[FrameWork]) -> list[int]:
    """The distinct non-silent levels in order of play: which lines were heard, in which order."""
    audio = np.concatenate([w.audio for w in works])
    heard = audio[audio != 0]
    return [int(v) for i, v in enumerate(heard) if i == 0 or heard[i - 1] != v]


def test_same_frames_events_overlays_and_audio_as_the_offline_timeline() -> None:
    lines = segment_lines()
    speeches = [spoken(line, 1000 * (i + 1)) for i, line in enumerate(lines)]
    plan = SegmentPlan("cup", tuple(
        SpokenLine(line, sp.samples, tuple(sp.sample_at(line.speech_pos(c.at)) for c in line.cues))
        for line, sp in zip(lines, speeches)
    ), CUP, STOCKS["cup"])
    offline = Timeline([plan])
    expected_audio = np.zeros(offline.total_samples, np.int16)
    for placed, sp in zip(offline.lines, speeches):
        expected_audio[placed.start : placed.start + sp.samples] = sp.pcm

    tl = LiveTimeline(CARDS, STOCKS)
    idle = LEAD_IN // SAMPLES_PER_FRAME  # the offline lead-in is whole frames of silence
    works = run(tl, idle)
    for line, sp in zip(lines, speeches):
        tl.enqueue(line, sp)
    works += run(tl, offline.frames - idle)

    assert [w.frame for w in works] == list(range(offline.frames))
    assert np.array_equal(np.concatenate([w.audio for w in works]), expected_audio)
    got_events = [(e.kind, e.frame, e.product_id, e.value) for w in works for e in w.events]
    want_events = [(e.kind, e.frame, e.product_id, e.value) for e in offline.events]
    assert got_events == want_events
    assert [k for k, *_ in got_events] == ["show_card", "countdown", "countdown", "countdown", "link_up", "hide_card"]
    for w in works:
        assert w.overlay == offline.overlay_state(w.frame), w.frame
        assert w.glance == glance(offline, w.frame)
        assert all(e.frame == w.frame and e.media_time == w.frame / 25 for e in w.events)
    assert [w.speaking for w in works] == [bool(np.any(w.audio)) for w in works]


def test_silence_and_an_idle_host_when_nothing_is_queued() -> None:
    tl = LiveTimeline(CARDS, STOCKS)
    works = run(tl, 30)
    assert all(not w.audio.any() and w.audio.shape == (SAMPLES_PER_FRAME,) and w.audio.dtype == np.int16 for w in works)
    assert all(not w.speaking and w.overlay.subtitle is None and not w.events for w in works)
    line = make_line("来了来了！", pause_after_ms=0)
    tl.enqueue(line, spoken(line, 500))
    assert tl.queued == 1
    w = tl.next_frame()
    assert w.frame == 30 and w.speaking and w.audio[0] == 500 and w.overlay.subtitle == "来了来了！"
    assert tl.queued == 0
    rest = run(tl, 10)
    assert sum(int(x.audio.astype(bool).sum()) for x in [w, *rest]) == len(line.speech) * 1500  # all of it, once
    assert not rest[-1].speaking and rest[-1].overlay.subtitle is None


def test_lines_play_in_order_front_lines_next_and_clear_drops_the_rest() -> None:
    tl = LiveTimeline(CARDS, STOCKS)
    texts = ["第一句。", "第二句。", "第三句。"]
    for i, text in enumerate(texts):
        line = make_line(text, pause_after_ms=100)
        tl.enqueue(line, spoken(line, 100 * (i + 1)))
    works = run(tl, 2)  # the first line is playing
    for level, text in ((7, "欢迎小王！"), (8, "谢谢点赞！")):
        line = make_line(text, pause_after_ms=100)
        tl.enqueue(line, spoken(line, level), front=True)
    works += run(tl, 40)
    assert levels(works) == [100, 7, 8, 200, 300]

    for i, text in enumerate(texts):
        line = make_line(text, pause_after_ms=100)
        tl.enqueue(line, spoken(line, 100 * (i + 1)))
    works = run(tl, 2)
    tl.clear_queue()
    assert tl.queued == 0
    works += run(tl, 30)
    assert levels(works) == [100]  # the current line finishes, nothing after it


def test_link_up_now_fires_on_the_very_next_frame() -> None:
    tl = LiveTimeline(CARDS, STOCKS)
    run(tl, 5)
    tl.link_up_now("tea")
    w = tl.next_frame()
    assert [(e.kind, e.product_id, e.frame) for e in w.events] == [("show_card", "tea", 5), ("link_up", "tea", 5)]
    assert w.overlay.card == TEA and w.overlay.card_age == 0 and w.overlay.stock is None
    assert w.overlay.burst_age == 0
    later = run(tl, 60)
    assert [x.overlay.burst_age for x in later[:3]] == [1, 2, 3]
    assert later[48].overlay.burst_age == 49 and later[49].overlay.burst_age is None  # the burst shows 50 frames
    assert all(not x.events for x in later)

    tl.link_up_now("tea")  # the card is up: only the burst again
    w = tl.next_frame()
    assert [e.kind for e in w.events] == ["link_up"] and w.overlay.burst_age == 0 and w.overlay.card_age == 61
    with pytest.raises(ValueError, match="no card for product 'nope'"):
        tl.link_up_now("nope")


def test_pause_holds_the_line_and_its_cues() -> None:
    def play(pause_at: int | None) -> list[FrameWork]:
        tl = LiveTimeline(CARDS, STOCKS)
        line = countdown_line("cup")
        tl.enqueue(line, Speech(np.arange(1, 60_001, dtype=np.int16),
                                tuple(Mark(i, i * 5000) for i in range(len(line.speech)))))
        works = []
        for n in range(60):
            if n == pause_at:
                tl.pause()
            if pause_at is not None and n == pause_at + 5:
                tl.resume()
            works.append(tl.next_frame())
        return works

    straight, paused = play(None), play(4)
    held = paused[4:9]
    assert all(not w.audio.any() and not w.speaking and not w.events and w.overlay.subtitle is None for w in held)
    resumed = [w for i, w in enumerate(paused) if not 4 <= i < 9]
    assert np.array_equal(np.concatenate([w.audio for w in resumed]),
                          np.concatenate([w.audio for w in straight[:55]]))  # not a sample lost or repeated
    events = lambda works: [(e.kind, e.value, e.frame) for w in works for e in w.events]
    assert events(paused) == [(k, v, f + 5 if f >= 4 else f) for k, v, f in events(straight)]  # later cues wait
    assert [f for *_, f in events(straight)] == [0, 5, 10, 15]  # marks every 5000 samples: 0, 10000, 20000, 30000


def test_segment_labels_follow_the_lines_played() -> None:
    tl = LiveTimeline(CARDS, STOCKS)
    assert tl.segment is None
    a, b = make_line("甲。", pause_after_ms=0), make_line("乙。", pause_after_ms=0)
    tl.enqueue(a, spoken(a, 1), segment=4)
    tl.enqueue(b, spoken(b, 2))  # a line without a label (the host answering) keeps the segment
    run(tl, 1)
    assert tl.segment == 4 and tl.frame == 1
    run(tl, 3)
    assert tl.segment == 4 and tl.queued == 0


def test_a_card_cue_for_an_unknown_product_is_refused_when_queued() -> None:
    tl = LiveTimeline(CARDS, STOCKS)
    line = make_line("新品来了！", [Cue("show_card", 0, "ghost")])
    with pytest.raises(ValueError, match="no card for product 'ghost'"):
        tl.enqueue(line, spoken(line, 1))


def test_set_stock_updates_the_bar_of_the_card_on_screen():
    from overlay.state import CardInfo, StockInfo
    from studio.live_timeline import LiveTimeline

    card = CardInfo("p", "杯子", "99", "59", None, 1)
    t = LiveTimeline({"p": card}, {"p": StockInfo(50, 50)})
    t.link_up_now("p")
    assert t.next_frame().overlay.stock == StockInfo(50, 50)
    t.set_stock("p", 37)
    assert t.next_frame().overlay.stock == StockInfo(37, 50)
    t.set_stock("p", -3)
    assert t.next_frame().overlay.stock == StockInfo(0, 50)


def test_an_urgent_line_waits_for_a_clause_end_and_the_interrupted_line_then_goes_on():
    import numpy as np

    from avatar.voice.base import Mark, Speech
    from overlay.state import CardInfo, StockInfo
    from script_gen.builder import make_line
    from studio.live_timeline import LiveTimeline

    def speech(text: str, per_char: int) -> Speech:
        n = len(text) * per_char
        pcm = np.full(n, 1000, np.int16)
        return Speech(pcm, tuple(Mark(i, i * per_char) for i in range(len(text))), "test")

    t = LiveTimeline({"p": CardInfo("p", "杯", "9", "5", None, 1)}, {"p": StockInfo(1, 1)})
    long_line = make_line("第一句很长很长，第二句也很长很长。", pause_after_ms=0)
    t.enqueue(long_line, speech(long_line.speech, 4800))  # 0.1 s a character
    frames = [t.next_frame() for _ in range(10)]  # 0.4 s in: inside the first clause, 0.4 s before its end
    assert all(f.overlay.subtitle == long_line.text for f in frames)
    answer = make_line("@小王 五元。", pause_after_ms=0)
    t.enqueue(answer, speech(answer.speech, 4800), front=True)
    subtitles = [t.next_frame().overlay.subtitle for _ in range(60)]
    first_answer = subtitles.index(answer.text)
    # the first clause (7 characters + its comma = 0.8 s = 20 frames) finishes first, not the whole line
    assert 10 + first_answer == 20
    resumed = subtitles.index(long_line.text, first_answer)
    assert 16 <= resumed - first_answer <= 19  # then the whole answer (0.7 s), then the rest of the line
    assert subtitles[resumed:].count(long_line.text) >= 20  # the second clause is not lost


def test_generated_lines_with_ad_law_findings_are_not_spoken_but_cued_lines_stay():
    from script_gen.builder import make_line
    from script_gen.script import Cue
    from studio.live import lawful

    assert lawful(make_line("这款耳机降噪效果很好。"))
    assert not lawful(make_line("全网最低价，国家级品质！"))
    assert lawful(make_line("全网最低价！", [Cue("show_card", 0, "p")]))  # the card must still come up


# -- cutting in at a word end when the clause end is far -------------------------------------------

PER_CHAR = 4800  # 0.1 s a character


def ramp_speech(line: Line) -> Speech:
    """Every sample different (so a replayed stretch is recognisable), one mark per character."""
    n = len(line.speech) * PER_CHAR
    return Speech((np.arange(n) % 30_000 + 1).astype(np.int16),
                  tuple(Mark(i, i * PER_CHAR) for i in range(len(line.speech))))


def answer_line() -> tuple[Line, Speech]:
    line = make_line("@小王 五元。", pause_after_ms=0)
    return line, Speech(np.full(len(line.speech) * PER_CHAR, -7, np.int16),
                        tuple(Mark(i, i * PER_CHAR) for i in range(len(line.speech))))


def heard(works: list[FrameWork]) -> np.ndarray:
    audio = np.concatenate([w.audio for w in works])
    return audio[audio != 0]


def test_a_far_clause_end_is_not_waited_for_the_answer_cuts_in_at_a_word_end_and_the_clause_is_said_again():
    tl = LiveTimeline(CARDS, STOCKS)
    line = make_line("大家好我是今天的主播小暖欢迎来到直播间，今天福利多多。", pause_after_ms=0)
    sp = ramp_speech(line)
    tl.enqueue(line, sp)
    works = run(tl, 10)  # 0.4 s in; the clause end is at 2.0 s
    reply, reply_sp = answer_line()
    tl.enqueue(reply, reply_sp, front=True)
    works += run(tl, 100)
    subtitles = [w.overlay.subtitle for w in works]
    first = subtitles.index(reply.text)
    assert first == 10  # the very next frame: 0.4 s is a word end (one mark every 0.1 s)
    audio = heard(works)
    cut = 10 * SAMPLES_PER_FRAME
    n_reply = reply_sp.samples
    assert np.array_equal(audio[:cut], sp.pcm[:cut])  # the line up to the word end
    assert np.all(audio[cut:cut + n_reply] == -7)  # the whole answer
    # then the interrupted clause again from its start, and the rest of the line: nothing lost
    assert np.array_equal(audio[cut + n_reply:], sp.pcm)


def test_the_cut_waits_for_the_next_word_end_not_mid_syllable():
    tl = LiveTimeline(CARDS, STOCKS)
    line = make_line("大家好我是今天的主播小暖欢迎来到直播间，今天福利多多。", pause_after_ms=0)
    sp = Speech(ramp_speech(line).pcm, tuple(Mark(i, i * PER_CHAR + 2000) for i in range(len(line.speech))))
    tl.enqueue(line, sp)
    works = run(tl, 3)  # 5760 samples in: between the marks at 2000 and 6800
    reply, reply_sp = answer_line()
    tl.enqueue(reply, reply_sp, front=True)
    works += run(tl, 100)
    audio = heard(works)
    assert np.array_equal(audio[:6800], sp.pcm[:6800]) and audio[6800] == -7  # stopped exactly at the mark
    assert np.array_equal(audio[6800 + reply_sp.samples:], sp.pcm)  # the clause replayed whole


def test_a_near_clause_end_is_still_waited_for_and_nothing_is_repeated():
    tl = LiveTimeline(CARDS, STOCKS)
    line = make_line("欢迎来到直播间，今天福利多多哦。", pause_after_ms=0)
    sp = ramp_speech(line)
    tl.enqueue(line, sp)
    works = run(tl, 10)  # 0.4 s in; the clause end (after ，) is at 0.8 s
    reply, reply_sp = answer_line()
    tl.enqueue(reply, reply_sp, front=True)
    works += run(tl, 100)
    audio = heard(works)
    clause_end = 8 * PER_CHAR
    assert np.array_equal(audio[:clause_end], sp.pcm[:clause_end]) and audio[clause_end] == -7
    assert np.array_equal(audio[clause_end + reply_sp.samples:], sp.pcm[clause_end:])


def test_the_countdown_is_never_cut_however_far_its_end():
    tl = LiveTimeline(CARDS, STOCKS)
    line = countdown_line("cup")
    sp = Speech(np.full(150_000, 9, np.int16), tuple(Mark(i, i * 10_000) for i in range(len(line.speech))))
    tl.enqueue(line, sp)
    works = run(tl, 3)
    reply, reply_sp = answer_line()
    tl.enqueue(reply, reply_sp, front=True)
    works += run(tl, 120)
    audio = heard(works)
    assert np.all(audio[:150_000] == 9) and np.all(audio[150_000:] == -7)  # one breath, then the answer
    assert [e.kind for w in works for e in w.events] == ["countdown", "countdown", "countdown", "link_up"]


def test_an_answer_in_the_pause_after_a_line_starts_at_once_and_cues_fire_once():
    tl = LiveTimeline(CARDS, STOCKS)
    first = make_line("这款保温杯今天很划算。", [Cue("show_card", 0, "cup")], pause_after_ms=2000)
    nxt = make_line("喜欢的拍一号链接。", [Cue("hide_card", 9, "cup")], pause_after_ms=0)
    tl.enqueue(first, ramp_speech(first))
    tl.enqueue(nxt, Speech(np.full(9 * PER_CHAR, 3, np.int16), tuple(Mark(i, i * PER_CHAR) for i in range(9))))
    speech_frames = -(-ramp_speech(first).samples // SAMPLES_PER_FRAME)
    works = run(tl, speech_frames + 5)  # 0.2 s into the 2 s pause
    reply, reply_sp = answer_line()
    tl.enqueue(reply, reply_sp, front=True)
    works += run(tl, 80)
    assert works[speech_frames + 5].overlay.subtitle == reply.text  # no waiting out the pause
    audio = heard(works)
    n = ramp_speech(first).samples
    assert np.array_equal(audio[:n], ramp_speech(first).pcm)
    assert np.all(audio[n:n + reply_sp.samples] == -7) and np.all(audio[n + reply_sp.samples:] == 3)
    assert [e.kind for w in works for e in w.events] == ["show_card", "hide_card"]


def test_cues_in_a_replayed_clause_fire_once():
    tl = LiveTimeline(CARDS, STOCKS)
    text = "这款保温杯原价九十九今天只要五十九元哦，喜欢就拍。"
    line = make_line(text, [Cue("show_card", 0, "cup"), Cue("gesture", 5, "cup")], pause_after_ms=0)
    tl.enqueue(line, ramp_speech(line))
    works = run(tl, 15)  # 0.6 s: past the gesture cue (0.5 s), far from the clause end (2.0 s)
    reply, reply_sp = answer_line()
    tl.enqueue(reply, reply_sp, front=True)
    works += run(tl, 100)
    assert [e.kind for w in works for e in w.events] == ["show_card", "gesture"]
    assert np.array_equal(heard(works)[15 * SAMPLES_PER_FRAME + reply_sp.samples:], ramp_speech(line).pcm)


def test_an_answer_carries_its_banner_while_it_plays_and_only_then():
    from overlay.state import BannerInfo

    tl = LiveTimeline(CARDS, STOCKS)
    line = make_line("大家好我是今天的主播小暖欢迎来到直播间，今天福利多多。", pause_after_ms=0)
    tl.enqueue(line, ramp_speech(line))
    works = run(tl, 10)
    reply, reply_sp = answer_line()
    reply = make_line(reply.text, pause_after_ms=400)
    banner = BannerInfo("@小王", "五元。")
    tl.enqueue(reply, reply_sp, front=True, banner=banner)
    works += run(tl, 120)
    shown = [w.frame for w in works if w.overlay.banner == banner]
    answer_frames = [w.frame for w in works if w.overlay.subtitle == reply.text]
    # the answer and its pause (a frame shared with the next line shows the next line)
    assert shown == answer_frames and len(shown) == (reply_sp.samples + 400 * 48) // SAMPLES_PER_FRAME
    assert all(w.overlay.banner in (None, banner) for w in works)  # the interrupted line has none
    assert works[shown[-1] + 1].overlay.banner is None and works[shown[-1] + 1].overlay.subtitle == line.text


def test_answering_is_true_from_an_urgent_line_queued_until_it_is_said():
    tl = LiveTimeline(CARDS, STOCKS)
    line = make_line("欢迎来到直播间，今天福利多多哦。", pause_after_ms=0)
    tl.enqueue(line, ramp_speech(line))
    run(tl, 3)
    assert not tl.answering
    reply, reply_sp = answer_line()
    tl.enqueue(reply, reply_sp, front=True)
    assert tl.answering
    states = [(tl.next_frame().overlay.subtitle, tl.answering) for _ in range(80)]
    assert all(answering for subtitle, answering in states if subtitle == reply.text)
    assert not states[-1][1] and states[-1][0] is None
