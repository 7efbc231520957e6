"""A live show end to end: the demo rundown streamed to HLS, driven by commands, decoded back as a viewer would."""
from __future__ import annotations

import asyncio
import re
import threading
import time

import av
import numpy as np
import pytest

from overlay.layout import make_layout
from script_gen.rundown import load_rundown
from studio.clock import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from studio.hls import published_segments
from studio.live import LiveShow
from studio.live_timeline import LiveEvent
from studio.render import DEMO_RUNDOWN

CARD_REGION = (slice(100, 520), slice(880, 1245))  # y, x at 720p: the product card, where the burst pops
ASKERS, ANSWER = "@小王", "有的，送耳机保护套和防丢挂绳。"


async def drive(show: LiveShow, marks: dict[str, float | int | str], events: list) -> None:
    await show.start()
    marks["status_started"] = show.status
    await show.wait_first_segment(10)
    # the show opens with the AI disclosure; link up once the first card is up and settled
    while published_segments(show.playlist) < 3 or not events or show.frames < events[0][0].frame + FPS:
        await asyncio.sleep(0.05)
    marks["t_a"], marks["f_a"] = time.monotonic(), show.frames
    marks["f_link"] = show.frames
    await show.command("link_up")
    await asyncio.sleep(2.5)
    marks["f_pause"] = show.frames
    await show.command("pause")
    marks["status_paused"] = show.status
    await asyncio.sleep(1.0)
    marks["f_resume"] = show.frames
    await show.command("resume")
    await asyncio.sleep(1.0)
    marks["t_b"], marks["f_b"] = time.monotonic(), show.frames
    await show.command("say", text=f"{ASKERS} {ANSWER}")  # as the studio words a viewer's answer
    await asyncio.sleep(6.5)  # the host gets to it (within a second), says it (~4 s) and goes on
    await show.stop()


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    events: list[tuple[LiveEvent, str]] = []
    show = LiveShow("demo", load_rundown(DEMO_RUNDOWN), tmp / "hls", voice_cache=tmp / "voice",
                    on_event=lambda e: events.append((e, threading.current_thread().name)))
    marks: dict[str, float | int | str] = {}
    asyncio.run(drive(show, marks, events))
    return show, marks, events


@pytest.fixture(scope="module")
def decoded(streamed):
    show = streamed[0]
    card_change, times = [], []
    banner = make_layout(1280, 720).banner
    show.banner_crops = []  # the banner's box in every decoded frame
    prev = None
    with av.open(str(show.playlist)) as c:
        for f in c.decode(video=0):
            times.append(float(f.time))
            picture = f.to_ndarray(format="bgr24")
            show.banner_crops.append(picture[banner.y:banner.bottom, banner.x:banner.right].copy())
            region = picture[CARD_REGION].astype(np.int16)
            card_change.append(0.0 if prev is None else float(np.abs(region - prev).mean()))
            prev = region
    with av.open(str(show.playlist)) as c:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    return np.array(card_change), np.array(times), pcm


def test_playlist_is_live_hls_of_one_second_fmp4_segments(streamed):
    show, _, _ = streamed
    text = show.playlist.read_text()
    assert '#EXT-X-MAP:URI="init.mp4"' in text and "#EXT-X-INDEPENDENT-SEGMENTS" in text
    assert text.rstrip().endswith("#EXT-X-ENDLIST")  # stop() closed the stream
    durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", text)]
    assert len(durations) == -(-show.frames // FPS) and published_segments(show.playlist) == len(durations)
    assert all(d == 1.0 for d in durations[:-1]) and 0 < durations[-1] <= 1.0
    assert text.count("#EXT-X-PROGRAM-DATE-TIME:") == len(durations)
    for name in re.findall(r"^seg_\d+\.m4s$", text, re.MULTILINE) + ["init.mp4"]:
        assert (show.out_dir / name).stat().st_size > 0


def test_stream_decodes_as_h264_aac_25fps_with_audio_and_video_in_step(streamed, decoded):
    show, _, _ = streamed
    _, times, pcm = decoded
    with av.open(str(show.playlist)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, a.codec_context.name) == ("h264", "aac")
        assert (v.width, v.height, v.average_rate) == (1280, 720, 25)
        assert (a.sample_rate, a.layout.name) == (SAMPLE_RATE, "mono")
    assert len(times) == show.frames and show.media_time == (show.frames - 1) / FPS
    assert np.allclose(np.diff(times), 1 / FPS, atol=1e-3)  # no gap, no stretch, no repeat
    assert abs(len(pcm) / SAMPLE_RATE - len(times) / FPS) <= 1 / FPS
    assert np.sqrt(np.mean(np.square(pcm[: 3 * SAMPLE_RATE], dtype=np.float64))) > 0.02  # the host is talking


def test_link_up_fires_on_the_next_frame_and_the_burst_shows_on_it(streamed, decoded):
    _, marks, events = streamed
    card_change, _, _ = decoded
    kinds = [(e.kind, e.product_id) for e, _ in events]
    assert kinds[:2] == [("show_card", "x1-earbuds"), ("link_up", "x1-earbuds")]  # card already up: burst only
    assert events[0][0].frame > 0  # the card comes up with the first product line, after the AI disclosure
    assert all(name == "linkup-live-demo" for _, name in events)  # on_event runs on the render thread
    link = events[1][0]
    assert marks["f_link"] <= link.frame <= marks["f_link"] + 1
    assert link.media_time == link.frame / FPS
    settled = events[0][0].frame + 10  # after the card's slide-in, the card region is still until the burst
    burst = settled + int(np.flatnonzero(card_change[settled:] > 5.0)[0])
    assert abs(burst - link.frame) <= 1
    assert card_change[settled:burst - 1].max() < 2.0


def test_pause_silences_the_host_and_resume_carries_on(streamed, decoded):
    _, marks, _ = streamed
    _, _, pcm = decoded
    assert (marks["status_started"], marks["status_paused"]) == ("live", "paused")
    margin = 2400  # 50 ms: AAC smears edges a little
    before = pcm[(marks["f_pause"] - 2 * FPS) * SAMPLES_PER_FRAME : marks["f_pause"] * SAMPLES_PER_FRAME]
    held = pcm[(marks["f_pause"] + 2) * SAMPLES_PER_FRAME + margin : marks["f_resume"] * SAMPLES_PER_FRAME - margin]
    after = pcm[(marks["f_resume"] + 2) * SAMPLES_PER_FRAME : (marks["f_resume"] + 2 + FPS) * SAMPLES_PER_FRAME]
    rms = lambda x: float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    assert len(held) > SAMPLE_RATE // 2
    assert rms(before) > 0.02 and np.abs(held).max() < 0.01 and rms(after) > 0.01


def test_output_is_paced_to_the_wall_clock(streamed):
    show, marks, _ = streamed
    rate = (marks["f_b"] - marks["f_a"]) / (marks["t_b"] - marks["t_a"])
    assert 0.9 * FPS <= rate <= 1.1 * FPS
    assert show.status == "ended"


def test_an_answer_is_burnt_in_with_its_banner_while_the_host_says_it(streamed, decoded):
    show, marks, events = streamed
    said = [e for e, _ in events if e.kind == "gesture"]
    assert [e.text for e in said] == [f"{ASKERS} {ANSWER}"]
    start = said[0].frame
    assert marks["f_b"] <= start <= marks["f_b"] + 25  # at a near clause end or word end: within a second
    crops = show.banner_crops

    def gold(crop: np.ndarray) -> int:  # the "@昵称" tag's gold
        b, g, r = (crop[..., i].astype(int) for i in range(3))
        return int(((b < 130) & (g > 160) & (g < 240) & (r > 215)).sum())

    before = crops[start - 25 : start - 1]
    during = crops[start + 2 : start + 25]  # the answer lasts ~2 s with its pause
    calm = max(gold(c) for c in before)  # the host's own colours in that box
    assert min(gold(c) for c in during) > 5 * calm + 1000, (calm, [gold(c) for c in during])
    change = lambda a, b: float(np.abs(a.astype(np.int16) - b).mean())
    still = max(change(c, before[-1]) for c in before)  # the host breathing, blinking
    assert min(change(c, before[-1]) for c in during) > 3 * still + 10  # the dark panel and its text
    assert gold(crops[-1]) <= 2 * calm + 50  # gone once the answer is said


def test_bad_commands_are_refused(tmp_path):
    async def go() -> None:
        show = LiveShow("x", load_rundown(DEMO_RUNDOWN), tmp_path / "hls", voice_cache=None)
        with pytest.raises(ValueError, match="unknown action 'dance'"):
            await show.command("dance")
        with pytest.raises(RuntimeError, match="show x is starting"):
            await show.command("pause")

    asyncio.run(go())
