"""Extra outputs of a live show: an RTMP push to a real local listener and the MP4 recording, decoded back."""
from __future__ import annotations

import asyncio
import re
import socket
import threading

import av
import numpy as np
import pytest
from test_server import running

from script_gen.rundown import load_rundown
from studio.auth import Identity
from studio.clock import FPS, SAMPLE_RATE
from studio.hls import published_segments
from studio.live import LiveShow
from studio.render import DEMO_RUNDOWN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener:
    """An RTMP server in a thread (FFmpeg's listen mode), decoding whatever is pushed to it."""

    def __init__(self) -> None:
        self.url = f"rtmp://127.0.0.1:{free_port()}/live/test"
        self.codecs: list[str] = []
        self.sizes: list[tuple[int, int]] = []
        self.pcm: list[np.ndarray] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with av.open(self.url, format="flv", options={"listen": "1"}, timeout=60) as c:
                self.codecs = sorted(s.codec_context.name for s in c.streams)
                for packet in c.demux():
                    for frame in packet.decode():
                        if isinstance(frame, av.VideoFrame):
                            self.sizes.append((frame.width, frame.height))
                        else:
                            self.pcm.append(frame.to_ndarray().reshape(-1))
        except av.error.FFmpegError:  # the pusher hung up
            pass

    def join(self) -> None:
        self._thread.join(10)


async def until(predicate, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def drive(show: LiveShow, listener: Listener, marks: dict) -> None:
    await show.start()
    await show.wait_first_segment(10)
    await until(lambda: show.rtmp_status.startswith("failed: "), 10)
    marks["failed_status"] = show.rtmp_status
    marks["segments_at_failure"] = published_segments(show.playlist)
    await asyncio.sleep(2.5)
    marks["segments_later"] = published_segments(show.playlist)
    marks["status_later"] = show.status
    await show.set_rtmp(listener.url)
    await until(lambda: len(listener.sizes) >= 3 * FPS, 20)
    marks["pushed_status"] = show.rtmp_status
    await show.stop()
    listener.join()


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outputs")
    closed = f"rtmp://127.0.0.1:{free_port()}/live/nobody"  # nothing listens there
    show = LiveShow("demo", load_rundown(DEMO_RUNDOWN), tmp / "hls", voice_cache=tmp / "voice",
                    rtmp_url=closed, record_dir=tmp / "rec")
    listener = Listener()
    marks: dict = {}
    asyncio.run(drive(show, listener, marks))
    return show, listener, marks


def test_unreachable_rtmp_fails_without_stopping_the_show_or_its_hls(shown):
    _, _, marks = shown
    assert marks["failed_status"] == "failed: Connection refused"
    assert marks["status_later"] == "live"
    assert marks["segments_later"] >= marks["segments_at_failure"] + 2


def test_rtmp_listener_receives_the_show_as_h264_and_aac(shown):
    _, listener, marks = shown
    assert marks["pushed_status"] == "live"
    assert listener.codecs == ["aac", "h264"]
    assert len(listener.sizes) >= 50 and set(listener.sizes) == {(1280, 720)}
    pcm = np.concatenate(listener.pcm)
    assert len(pcm) >= 2 * SAMPLE_RATE
    assert np.sqrt(np.mean(np.square(pcm, dtype=np.float64))) > 0.02  # the host is talking


def test_recording_is_a_playable_mp4_of_the_whole_show(shown):
    show, _, _ = shown
    assert show.recording.parent.name == "rec"
    assert re.fullmatch(r"demo-\d{8}-\d{6}\.mp4", show.recording.name)
    with av.open(str(show.recording)) as c:
        assert [s.codec_context.name for s in c.streams] == ["h264", "aac"]
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(show.recording)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    assert frames == show.frames
    assert abs(samples / SAMPLE_RATE - frames / FPS) <= 1 / FPS


def test_outputs_endpoint_checks_the_url_and_the_role(tmp_path):
    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            url = f"{base}/api/streams/s1/outputs"
            async with http.post(url, json={"rtmp_url": "http://x"}, headers=buyer) as r:
                assert r.status == 400 and "rtmp://" in (await r.json())["error"]
            viewer = studio.tokens.issue(Identity("viewer", "v-1", "小王"))
            async with http.post(url, json={"rtmp_url": "rtmp://127.0.0.1/live/x"},
                                 headers={"Authorization": f"Bearer {viewer}"}) as r:
                assert r.status == 403
            async with http.post(url, json={"rtmp_url": "rtmp://127.0.0.1/live/x"}, headers=buyer) as r:
                assert r.status == 409  # not live yet
            async with http.post(f"{base}/api/streams/s1/control", json={"action": "go_live"}, headers=buyer) as r:
                assert r.status == 200
            async with http.get(f"{base}/api/streams/s1") as r:
                details = await r.json()
            assert details["rtmp_status"] == "off"
            assert re.fullmatch(r"s1-\d{8}-\d{6}\.mp4", details["recording"])
            closed = f"rtmp://127.0.0.1:{free_port()}/live/x"
            async with http.post(url, json={"rtmp_url": closed}, headers=buyer) as r:
                assert r.status == 200 and (await r.json())["rtmp_status"] == "connecting"
            await until(lambda: stream.show.rtmp_status == "failed: Connection refused", 10)
            async with http.post(url, json={"rtmp_url": None}, headers=buyer) as r:
                assert r.status == 200 and await r.json() == {"rtmp_status": "off"}
            await stream.show.stop()
            assert (tmp_path / "data" / "recordings" / details["recording"]).stat().st_size > 0

    asyncio.run(main())
