"""A live show: a rundown read by the host, frame by frame, paced to the wall clock, out as HLS.

Two sides share one LiveTimeline under a lock. The asyncio side voices segments ahead of time
(the voice engines are async; the offline one speaks in a worker thread) and takes the buyer's
commands. The render thread asks the timeline for each frame, draws the host and overlays,
encodes and sleeps until the frame is due; it never waits for speech: with nothing queued the
host idles over silence. Audio is master: every frame carries its 1920 samples even when
rendering falls behind, in which case the last picture is repeated instead.
"""
from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Literal

import av
import cv2

from avatar.host.factory import Host, make_host
from avatar.host.lips import MouthFollower, drive
from avatar.host.pack import load_pack
from avatar.voice.base import Speech
from avatar.voice.factory import make_voice
from avatar.voice.profile import VoiceProfile
from overlay.renderer import OverlayRenderer
from overlay.state import BannerInfo, CardInfo, StockInfo
from script_gen.builder import make_line, segment_script
from script_gen.lint import lint
from script_gen.llm import LlmClient, Written, write_segment_script
from script_gen.rundown import Rundown
from script_gen.script import Cue, Line, Script
from studio.clock import FPS
from studio.hls import media_epoch, published_segments
from studio.live_timeline import LiveEvent, LiveTimeline
from studio.media import RESOLUTIONS, EncoderSettings, bgr_to_yuv_frame
from studio.render import card_for, host_pack_path
from studio.rtmp import Recording, RtmpPush, TeeWriter, check_rtmp_url

log = logging.getLogger(__name__)

PREROLL_FRAMES = FPS  # the first second renders unpaced, so the first segment is out ~1 s sooner
LATE_FRAMES = 2  # a frame due longer ago than this repeats the last picture instead of rendering
LOW_WATER = 3  # with fewer lines queued, the next segment is voiced
FEED_POLL_S = 0.1
VOICE_CONCURRENCY = 4
ACTIONS = ("pause", "resume", "skip", "link_up", "say", "end")

Status = Literal["starting", "live", "paused", "ended"]


_ASKERS = re.compile(r"(@\S+(?:\s*、\s*@\S+)*)\s+(\S.*)", re.DOTALL)


def answer_banner(text: str) -> BannerInfo | None:
    """"@小王、@小李 answer" (how the studio words an answer) -> the banner naming them; other lines get none."""
    m = _ASKERS.fullmatch(text.strip())
    return None if m is None else BannerInfo(m.group(1), m.group(2).strip())


def lawful(line: Line) -> bool:
    """Generated lines are linted before they are spoken (written ones are checked at go-live):
    a line with an ad-law finding may not be said, unless it carries a cue the show needs."""
    return bool(line.cues) or not lint([line.text])


class LiveShow:
    """One stream: `start`, then `command`s, then `stop`.

    `on_event` is called on the render thread for every LiveEvent, when the frame showing it is
    produced; a caller living on an event loop must hop there itself (loop.call_soon_threadsafe)
    and must not block. `voice_cache` None means no speech cache. With `loop` the rundown starts
    over after its last segment (wording changes with each pass); without, the host idles until
    `stop`. The encoded packets also go, unencoded again, to an RTMP push (`rtmp_url`, `set_rtmp`)
    and to an MP4 recording in `record_dir`. `voice`, a brand's profile, replaces the rundown's
    host voice (its chain falls back line by line down to the offline voice). `pack_dir`, a brand's
    host (a photo pack), replaces the rundown's `host.avatar`. With `llm` the model writes the
    selling lines of generated segments from the second segment on, each while the one before it
    plays (the first goes on air with the offline script so going live stays fast); a script not
    written and checked (script_gen.llm) by the time it is due is the offline one.
    """

    def __init__(
        self,
        stream_id: str,
        rundown: Rundown,
        out_dir: Path,
        *,
        voice_cache: Path | None,
        resolution: str = "720p",
        seed: int = 0,
        loop: bool = True,
        on_event: Callable[[LiveEvent], None] | None = None,
        preset: str = "veryfast",
        rtmp_url: str | None = None,
        record_dir: Path | None = None,
        voice: VoiceProfile | None = None,
        pack_dir: Path | None = None,
        llm: LlmClient | None = None,
    ) -> None:
        if not rundown.segments:
            raise ValueError(f"{rundown.source}: the rundown has no segments")
        self.stream_id = stream_id
        self.rundown = rundown
        self.out_dir = Path(out_dir)
        self.size = RESOLUTIONS[resolution]
        self.seed = seed
        self.loop = loop
        self.preset = preset
        self.on_event = on_event
        self.pack_dir = pack_dir
        self.status: Status = "starting"
        self.repeated_frames = 0  # frames that reused the previous picture (rendering fell behind)
        self.failovers: deque[dict] = deque(maxlen=50)  # lines another engine had to speak (for the console)
        self._voice = make_voice(voice or rundown.host.voice, voice_cache)
        self._llm = llm
        self._writing: dict[int, asyncio.Task[Written[Script]]] = {}  # segment k -> the model writing it
        self.voice_settings = rundown.host.voice if voice is None else voice.settings()
        self._gate = asyncio.Semaphore(VOICE_CONCURRENCY)
        cards, stocks = _cards_and_stocks(rundown)
        self._timeline = LiveTimeline(cards, stocks)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._frames = 0
        self._next_segment = 0  # the k of the next segment to voice (rundown segment k % len)
        self._generation = 0  # bumped by skip: segments voiced before it are dropped
        self._thread: threading.Thread | None = None
        self._feeder: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._media_epoch: float | None = None
        self.rtmp_url = None if rtmp_url is None else check_rtmp_url(rtmp_url)
        self._rtmp: RtmpPush | None = None
        self._writer: TeeWriter | None = None
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.recording = None if record_dir is None else Path(record_dir) / f"{stream_id}-{stamp}.mp4"

    @property
    def media_time(self) -> float:
        """Seconds on the stream's clock of the frame being rendered (or last rendered)."""
        return max(self._frames - 1, 0) / FPS

    @property
    def answering(self) -> bool:
        """The host is saying (or about to say) an answer or a buyer's line."""
        with self._lock:
            return self._timeline.answering

    @property
    def frames(self) -> int:
        return self._frames

    @property
    def playlist(self) -> Path:
        return self.out_dir / "index.m3u8"

    @property
    def rtmp_status(self) -> str:
        """"off", "connecting", "live" or "failed: <reason>" (retried every few seconds while a URL is set)."""
        if self.rtmp_url is None:
            return "off"
        return "connecting" if self._rtmp is None else self._rtmp.status

    @property
    def media_epoch(self) -> float | None:
        """Wall-clock time of media time 0 as the playlist dates it (None until the first segment)."""
        if self._media_epoch is None:
            self._media_epoch = media_epoch(self.playlist)
        return self._media_epoch

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Voice the first segment and prepare the renderers (off the loop), then start the render thread."""
        if self.status != "starting" or self._thread is not None:
            raise RuntimeError(f"show {self.stream_id} already started")
        first, (host, overlays, writer) = await asyncio.gather(
            self._voice_segment(0), asyncio.to_thread(self._open_outputs)
        )
        self._enqueue_segment(0, first)
        self._next_segment = 1
        self._writer = writer
        if self.recording is not None:
            writer.attach(Recording(self.recording))
        if self.rtmp_url is not None:
            self._rtmp = RtmpPush(self.rtmp_url)
            writer.attach(self._rtmp)
        self._thread = threading.Thread(
            target=self._render, args=(host, overlays, writer), name=f"linkup-live-{self.stream_id}", daemon=True
        )
        self.status = "live"
        self._thread.start()
        self._feeder = asyncio.create_task(self._feed())

    async def wait_first_segment(self, timeout: float) -> None:
        """Return once the playlist lists a segment; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while published_segments(self.playlist) == 0:
                if self._failure is not None:
                    raise self._failure
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """End the stream: the render thread flushes the encoder and closes the playlist (ENDLIST)."""
        if self.status == "ended" and self._thread is None:
            return
        self.status = "ended"
        for task in self._writing.values():
            task.cancel()
        self._writing.clear()
        if self._feeder is not None:
            self._feeder.cancel()
            with suppress(asyncio.CancelledError):
                await self._feeder
            self._feeder = None
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._failure is not None:
            raise self._failure

    # -- commands ---------------------------------------------------------------------------

    async def set_rtmp(self, url: str | None) -> None:
        """Start pushing to `url` (None stops); ValueError for a non-RTMP URL, RuntimeError once ended."""
        if url is not None:
            check_rtmp_url(url)
        if self.status == "ended":
            raise RuntimeError(f"show {self.stream_id} is ended")
        old, self._rtmp, self.rtmp_url = self._rtmp, None, url
        if self._writer is not None:
            if old is not None:
                self._writer.detach(old)
            if url is not None:
                self._rtmp = RtmpPush(url)
                self._writer.attach(self._rtmp)
        if old is not None:
            await asyncio.to_thread(old.close)

    def set_stock(self, product_id: str, left: int) -> None:
        """What is left of the product's flash-sale batch, burnt into the stock bar from the next frame."""
        with self._lock:
            self._timeline.set_stock(product_id, left)

    async def command(self, action: str, product_id: str | None = None, text: str | None = None) -> None:
        """Raises ValueError for a bad action or argument, RuntimeError when the show is not running."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; allowed: {', '.join(ACTIONS)}")
        if self.status not in ("live", "paused"):
            raise RuntimeError(f"show {self.stream_id} is {self.status}")
        if action == "pause":
            with self._lock:
                self._timeline.pause()
            self.status = "paused"
        elif action == "resume":
            with self._lock:
                self._timeline.resume()
            self.status = "live"
        elif action == "skip":
            self._skip(product_id)
        elif action == "link_up":
            pid = product_id or self.current_product
            with self._lock:
                self._timeline.link_up_now(pid)
        elif action == "say":
            if not text or not text.strip():
                raise ValueError("say needs a non-empty text")
            # a gesture cue at its first character: the host turns to the card, and the event says when it began
            line = make_line(text.strip(), [Cue("gesture", 0, self.current_product)])
            speech = await self._speak(line.speech)
            with self._lock:
                self._timeline.enqueue(line, speech, front=True, banner=answer_banner(line.text))
        else:
            await self.stop()

    def _playing_segment(self) -> int:
        with self._lock:
            k = self._timeline.segment
        return -1 if k is None else k

    @property
    def current_product(self) -> str:
        """The product of the segment now playing (the first one before anything plays)."""
        segments = self.rundown.segments
        return segments[max(self._playing_segment(), 0) % len(segments)].product_id

    def _skip(self, product_id: str | None) -> None:
        """Drop what is queued; the next segment (or the next one of `product_id`) is voiced and follows the current line."""
        segments = self.rundown.segments
        n = len(segments)
        current = self._playing_segment()
        end = current + 1 + n if self.loop else n
        target = next((k for k in range(current + 1, end) if product_id in (None, segments[k % n].product_id)), None)
        if target is None:
            what = f"segment for product {product_id!r}" if product_id else "segment"
            raise ValueError(f"no next {what} in the rundown")
        with self._lock:
            self._timeline.clear_queue()
        self._generation += 1
        self._next_segment = target

    # -- voicing (event loop) ---------------------------------------------------------------

    async def _speak(self, text: str) -> Speech:
        async with self._gate:
            speech = await self._voice.synthesize(text, self.voice_settings)
        if speech.engine and speech.engine != self.voice_settings.engine:  # spoken by a fallback
            self.failovers.append({"text": text, "engine": speech.engine, "at": time.time()})
        return speech

    async def _voice_segment(self, k: int) -> list[tuple[Line, Speech]]:
        """Script and speech of segment number k (seed + k: the first pass is render.build_scripts' script)."""
        script = self._written_script(k)
        lines = script.lines
        if self.rundown.segments[k % len(self.rundown.segments)].script is None:
            kept = tuple(line for line in lines if lawful(line))
            if len(kept) < len(lines):
                log.error("stream %s: generated lines left out over ad-law findings: %s", self.stream_id,
                          [line.text for line in lines if line not in kept])
            lines = kept
        speeches = await asyncio.gather(*(self._speak(line.speech) for line in lines))
        return list(zip(lines, speeches, strict=True))


    def _enqueue_segment(self, k: int, lines: Sequence[tuple[Line, Speech]]) -> None:
        with self._lock:
            for line, speech in lines:
                self._timeline.enqueue(line, speech, segment=k)
        more = self.loop or k + 1 < len(self.rundown.segments)
        if self._llm is not None and more and k + 1 not in self._writing:  # the model writes the next one meanwhile
            self._writing[k + 1] = asyncio.create_task(write_segment_script(self._llm, self.rundown, k + 1, self.seed))

    def _written_script(self, k: int) -> Script:
        """The model's script for segment k if it is written by now, else the offline one (never a silence)."""
        for stale in [j for j in self._writing if j < k]:  # skipped over
            self._writing.pop(stale).cancel()
        task = self._writing.pop(k, None)
        if task is not None and task.done() and not task.cancelled() and task.exception() is None:
            return task.result().value
        if task is not None:
            task.cancel()
            log.warning("stream %s: llm script for segment %d not ready in time; offline script instead",
                        self.stream_id, k)
        return segment_script(self.rundown, k, self.seed)

    async def _feed(self) -> None:
        """Keep the timeline's queue topped up, one segment ahead."""
        while True:
            with self._lock:
                low = self._timeline.queued < LOW_WATER
            k, generation = self._next_segment, self._generation
            if not low or (not self.loop and k >= len(self.rundown.segments)):
                await asyncio.sleep(FEED_POLL_S)
                continue
            try:
                lines = await self._voice_segment(k)
            except Exception:  # a segment that cannot be voiced is skipped, the show goes on
                log.exception("stream %s: cannot voice segment %d; skipping it", self.stream_id, k)
                lines = None
                await asyncio.sleep(FEED_POLL_S)
            if generation != self._generation:  # a skip happened meanwhile: voice its target instead
                continue
            if lines is not None:
                self._enqueue_segment(k, lines)
            self._next_segment = k + 1

    # -- rendering (render thread) ----------------------------------------------------------

    def _open_outputs(self) -> tuple[Host, OverlayRenderer, TeeWriter]:
        width, height = self.size
        pack = load_pack(self.pack_dir or host_pack_path(self.rundown.host.avatar, Path(self.rundown.source).parent))
        host = make_host(pack, width, height, seed=self.seed)
        writer = TeeWriter(self.out_dir, EncoderSettings(width, height, preset=self.preset))
        return host, OverlayRenderer(width, height), writer

    def _render(self, host: Host, overlays: OverlayRenderer, writer: TeeWriter) -> None:
        # One thread for OpenCV: its worker pool would only fight x264 (and other shows) for the cores.
        cv2.setNumThreads(1)
        mouth = MouthFollower()
        last: av.VideoFrame | None = None
        t0 = time.monotonic()  # when frame PREROLL_FRAMES is due: set once the preroll is out

        def due(n: int) -> float:
            return t0 + (n - PREROLL_FRAMES) / FPS

        try:
            while not self._stop.is_set():
                with self._lock:
                    work = self._timeline.next_frame()
                n = work.frame
                self._frames = n + 1  # media_time reaches this frame before its events go out
                for event in work.events:
                    self._emit(event)
                opening = mouth.next(work.audio)  # every frame, so the lips' running level stays in step
                if n == PREROLL_FRAMES:
                    t0 = time.monotonic()
                late = n > PREROLL_FRAMES and time.monotonic() - due(n) > LATE_FRAMES / FPS
                if last is None or not late or work.events:  # a frame with an event is always drawn: events follow the video
                    lips = drive(work.viseme, opening)
                    picture = host.render(n, lips.open, work.glance, wide=lips.wide, nod=work.nod)
                    overlays.draw(picture, work.overlay)
                    last = bgr_to_yuv_frame(picture)
                else:
                    self.repeated_frames += 1
                writer.write(last, work.audio)
                wait = due(n + 1) - time.monotonic()
                if n >= PREROLL_FRAMES and wait > 0:
                    self._stop.wait(wait)
        except BaseException as exc:  # re-raised by stop()
            log.exception("stream %s: rendering failed", self.stream_id)
            self._failure = exc
            self.status = "ended"
        finally:
            writer.close()

    def _emit(self, event: LiveEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:  # a listener's bug must not stop the stream
            log.exception("stream %s: on_event failed for %s", self.stream_id, event)


def _cards_and_stocks(rundown: Rundown) -> tuple[dict[str, CardInfo], dict[str, StockInfo]]:
    """Each product's card (and flash-sale stock) as its first segment shows it."""
    cards: dict[str, CardInfo] = {}
    stocks: dict[str, StockInfo] = {}
    for segment in rundown.segments:
        pid = segment.product_id
        if pid in cards:
            continue
        cards[pid] = card_for(rundown.product(pid), segment, rundown.link_no(pid))
        if segment.flash_sale is not None:
            stocks[pid] = StockInfo(segment.flash_sale.stock, segment.flash_sale.stock)
    return cards, stocks
