"""Offline render: a rundown becomes an MP4 of the host selling, start to finish.

Steps: scripts from the rundown, speech for every line (cached, offline-first),
a timeline on the one media clock, then frames rendered on a worker thread while
the encoder muxes them with the audio of the same frame.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avatar.host.factory import make_host
from avatar.host.lips import VisemeTrack, drive, mouth_openness
from avatar.host.pack import load_pack
from avatar.voice.base import Speech, VoiceEngine
from avatar.voice.factory import default_cache_dir, make_voice
from overlay.renderer import OverlayRenderer
from overlay.state import CardInfo, StockInfo
from script_gen.builder import segment_script
from script_gen.llm import LlmConfig, write_scripts
from script_gen.rundown import Product, Rundown, Segment, format_yuan
from script_gen.script import Script
from studio.clock import SAMPLES_PER_FRAME
from studio.media import RESOLUTIONS, EncoderSettings, Mp4Writer, bgr_to_yuv_frame
from studio.timeline import SegmentPlan, SpokenLine, Timeline, glance

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEMO_RUNDOWN = ASSETS / "demo" / "rundown.yaml"


@dataclass(frozen=True)
class RenderOptions:
    resolution: str = "720p"
    seed: int = 0
    preset: str = "veryfast"
    cache_dir: Path | None = None  # None: the user's voice cache
    edge_proxy: str | None = None
    llm: LlmConfig | None = None  # a language model writes the generated segments' selling lines (docs/llm.md)


@dataclass(frozen=True)
class PreparedShow:
    """Everything decided before the first frame: scripts, speech, timeline, audio."""

    rundown: Rundown
    scripts: tuple[Script, ...]
    timeline: Timeline
    audio: np.ndarray  # int16 mono, timeline.total_samples long
    voices_used: frozenset[str]  # engines that actually spoke (after failover)


def card_for(product: Product, segment: Segment, link_no: int) -> CardInfo:
    coupon = segment.flash_sale.coupon if segment.flash_sale else product.coupon
    return CardInfo(
        product_id=product.id,
        name=product.name,
        price=format_yuan(product.price),
        live_price=format_yuan(product.live_price),
        coupon=coupon.label() if coupon else None,
        link_no=link_no,
    )


def host_pack_path(avatar: str, rundown_dir: Path) -> Path:
    """An avatar is a pack name under assets/hosts/ or a folder path (relative to the rundown)."""
    named = ASSETS / "hosts" / avatar
    if named.is_dir():
        return named
    return (rundown_dir / avatar).resolve()


async def _speak_all(voice: VoiceEngine, rundown: Rundown, scripts: list[Script]) -> list[list[Speech]]:
    gate = asyncio.Semaphore(4)

    async def speak(text: str) -> Speech:
        async with gate:
            return await voice.synthesize(text, rundown.host.voice)

    return [list(await asyncio.gather(*(speak(line.speech) for line in s.lines))) for s in scripts]


def build_scripts(rundown: Rundown, seed: int) -> list[Script]:
    return [segment_script(rundown, k, seed) for k in range(len(rundown.segments))]


async def prepare_show(rundown: Rundown, options: RenderOptions = RenderOptions()) -> PreparedShow:
    scripts = await write_scripts(options.llm, rundown, options.seed)  # build_scripts' without a model
    voice = make_voice(rundown.host.voice, options.cache_dir or default_cache_dir(), edge_proxy=options.edge_proxy)
    speeches = await _speak_all(voice, rundown, scripts)
    plans = []
    for seg, script, spoken in zip(rundown.segments, scripts, speeches, strict=True):
        product = rundown.product(seg.product_id)
        lines = tuple(
            SpokenLine(line, sp.samples, tuple(sp.sample_at(line.speech_pos(c.at)) for c in line.cues),
                       VisemeTrack.of(line.speech, sp))
            for line, sp in zip(script.lines, spoken, strict=True)
        )
        stock = StockInfo(seg.flash_sale.stock, seg.flash_sale.stock) if seg.flash_sale else None
        plans.append(SegmentPlan(product.id, lines, card_for(product, seg, rundown.link_no(product.id)), stock))
    timeline = Timeline(plans)
    audio = np.zeros(timeline.total_samples, dtype=np.int16)
    for placed, sp in zip(timeline.lines, (sp for seg in speeches for sp in seg), strict=True):
        audio[placed.start : placed.start + sp.samples] = sp.pcm
    used = frozenset(sp.engine for seg in speeches for sp in seg)
    return PreparedShow(rundown, tuple(scripts), timeline, audio, used)


class ShowRenderer:
    """Frame n of a prepared show: the host speaking frame n's audio, overlays from the timeline."""

    def __init__(self, show: PreparedShow, width: int, height: int, seed: int = 0, pack_dir: Path | None = None) -> None:
        # One show renders on one thread: OpenCV's own worker pool would only fight x264 (and other
        # shows) for the two cores; measured 107 -> 119 fps for the demo at 720p veryfast.
        cv2.setNumThreads(1)
        self.show = show
        pack = load_pack(pack_dir or host_pack_path(show.rundown.host.avatar, Path(show.rundown.source).parent))
        self.host = make_host(pack, width, height, seed=seed)
        self.overlays = OverlayRenderer(width, height)
        self.mouth = mouth_openness(show.audio, show.timeline.frames)

    def frame(self, n: int) -> np.ndarray:
        timeline = self.show.timeline
        mouth = drive(timeline.viseme(n), float(self.mouth[n]))
        picture = self.host.render(n, mouth.open, glance(timeline, n), wide=mouth.wide, nod=timeline.nod(n))
        self.overlays.draw(picture, self.show.timeline.overlay_state(n))
        return picture

    def audio(self, n: int) -> np.ndarray:
        return self.show.audio[n * SAMPLES_PER_FRAME : (n + 1) * SAMPLES_PER_FRAME]


def encode_show(
    renderer: ShowRenderer,
    out: Path,
    settings: EncoderSettings,
    progress: Callable[[int], None] | None = None,
    frames: int | None = None,
) -> int:
    """Render and encode audio on a worker thread, encode video and mux on this one (x264 is the
    bottleneck: this thread does nothing else); returns the frames written (all, or the first `frames`)."""
    frames = renderer.show.timeline.frames if frames is None else min(frames, renderer.show.timeline.frames)
    ready: queue.Queue = queue.Queue(maxsize=8)
    failure: list[BaseException] = []
    stop = threading.Event()
    written = 0
    with Mp4Writer(out, settings) as writer:

        def produce() -> None:
            try:
                for n in range(frames):
                    if stop.is_set():
                        return
                    ready.put((bgr_to_yuv_frame(renderer.frame(n)), writer.encode_audio(n, renderer.audio(n))))
            except BaseException as exc:  # handed to the encoding thread, re-raised there
                failure.append(exc)
            finally:
                ready.put(None)

        worker = threading.Thread(target=produce, name="linkup-render", daemon=True)
        worker.start()
        try:
            while (item := ready.get()) is not None:
                writer.write_encoded(*item)
                written += 1
                if progress:
                    progress(written)
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ready.get_nowait()
                except queue.Empty:
                    pass
                worker.join(0.05)
    if failure:
        raise failure[0]
    return written


def render_rundown(
    rundown: Rundown,
    out: Path,
    options: RenderOptions = RenderOptions(),
    progress: Callable[[int, int], None] | None = None,
) -> PreparedShow:
    width, height = RESOLUTIONS[options.resolution]
    show = asyncio.run(prepare_show(rundown, options))
    renderer = ShowRenderer(show, width, height, seed=options.seed)
    total = show.timeline.frames
    encode_show(renderer, out, EncoderSettings(width, height, preset=options.preset),
                (lambda n: progress(n, total)) if progress else None)
    return show
