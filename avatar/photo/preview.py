"""A short preview of a host saying a line: what a brand sees right after uploading its photo.

The offline voice speaks (no network, ~1000x real time), the lips follow the line's
visemes and the audio on the one media clock, and the clip is H.264/AAC MP4 at 720p.
Blocking: a server runs it off its event loop.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from avatar.host.factory import make_host
from avatar.host.lips import VisemeTrack, drive, mouth_openness, nod_after
from avatar.host.pack import load_pack
from avatar.voice.base import VoiceSettings
from avatar.voice.offline import OfflineEngine
from studio.clock import FPS, SAMPLES_PER_FRAME, frame_of_sample, seconds_to_samples
from studio.media import EncoderSettings, Mp4Writer

SAMPLE_LINE = "大家好，我是AI主播，欢迎来到直播间！"  # says it is an AI host, as every show does
LEAD_IN = seconds_to_samples(0.4)  # silence before the line: the host is seen idle first
FADE = seconds_to_samples(0.02)  # a line longer than the clip is faded out, not clicked off
PREVIEW_SIZE = (1280, 720)


def render_preview(pack_dir: Path, out_mp4: Path, seconds: float = 5.0, text: str | None = None) -> None:
    """A `seconds`-long H.264/AAC MP4 of the host saying `text` (a sample line by default) with the offline voice."""
    if not 1.0 <= seconds <= 60.0:
        raise ValueError(f"a preview lasts 1 to 60 s, got {seconds:g}")
    pack = load_pack(pack_dir)
    line = text or SAMPLE_LINE
    speech = asyncio.run(OfflineEngine().synthesize(line, VoiceSettings()))
    frames = round(seconds * FPS)
    audio = np.zeros(frames * SAMPLES_PER_FRAME, np.int16)
    pcm = speech.pcm[: audio.size - LEAD_IN].astype(np.float32)
    if pcm.size < speech.samples:
        pcm[-FADE:] *= np.linspace(1.0, 0.0, FADE, dtype=np.float32)
    audio[LEAD_IN : LEAD_IN + pcm.size] = np.round(pcm).astype(np.int16)
    track = VisemeTrack.of(line, speech)
    nods = [frame_of_sample(LEAD_IN + s) for s in track.sentence_ends]
    openings = mouth_openness(audio, frames)
    width, height = PREVIEW_SIZE
    host = make_host(pack, width, height, seed=0)
    with Mp4Writer(out_mp4, EncoderSettings(width, height, preset="veryfast")) as writer:
        for n in range(frames):
            lips = drive(track.at(n * SAMPLES_PER_FRAME + SAMPLES_PER_FRAME // 2 - LEAD_IN), float(openings[n]))
            nod = max((nod_after(n - f) for f in nods), default=0.0)
            picture = host.render(n, lips.open, 0.0, wide=lips.wide, nod=nod)
            writer.write(picture, audio[n * SAMPLES_PER_FRAME : (n + 1) * SAMPLES_PER_FRAME])
