"""Encoders: frames and PCM on the one media clock, muxed by PyAV.

Video pts count frames (time base 1/25), audio pts count samples (1/48000); both
come from the same frame index, so audio and video cannot drift apart.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Self

import av
import cv2
import numpy as np

from studio.clock import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME

RESOLUTIONS: dict[str, tuple[int, int]] = {"720p": (1280, 720), "1080p": (1920, 1080)}


class OutputError(Exception):
    """The output cannot be written (missing folder, no permission, bad name)."""


@dataclass(frozen=True)
class EncoderSettings:
    width: int = 1280
    height: int = 720
    preset: str = "veryfast"  # libx264 preset
    crf: int = 23
    audio_bitrate: int = 128_000
    gop: int = 2 * FPS  # a keyframe every 2 s


def check_writable(path: Path) -> None:
    """Fail before any rendering when the output cannot be created."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, expected a file name such as show.mp4")
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{path}: not writable")


def bgr_to_yuv_frame(bgr: np.ndarray) -> av.VideoFrame:
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p")


class AvWriter:
    """H.264 + AAC into an open PyAV container; one call to `write` per video frame with that frame's 1920 samples.

    Subclasses open the container (MP4 file, HLS playlist...); `x264` adds libx264 options to preset and crf.
    """

    def __init__(self, container: av.container.OutputContainer, settings: EncoderSettings,
                 x264: dict[str, str] | None = None) -> None:
        self.settings = settings
        self._container = container
        v = self._container.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = settings.width, settings.height, "yuv420p"
        v.codec_context.time_base = Fraction(1, FPS)
        v.codec_context.gop_size = settings.gop
        v.options = {"preset": settings.preset, "crf": str(settings.crf), **(x264 or {})}
        a = self._container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        a.codec_context.time_base = Fraction(1, SAMPLE_RATE)
        a.bit_rate = settings.audio_bitrate
        self._video, self._audio = v, a
        self.frames = 0

    def write(self, picture: np.ndarray | av.VideoFrame, pcm: np.ndarray) -> None:
        """`picture` is a BGR array, or a frame already converted (see bgr_to_yuv_frame) off this thread."""
        self.write_encoded(picture, self.encode_audio(self.frames, pcm))

    def encode_audio(self, n: int, pcm: np.ndarray) -> list[av.Packet]:
        """Frame n's 1920 samples, encoded. The audio encoder is its own: this may run on another
        thread than `write_encoded` (an offline render encodes audio on its render thread)."""
        if pcm.shape != (SAMPLES_PER_FRAME,):
            raise ValueError(f"need {SAMPLES_PER_FRAME} samples per frame, got {pcm.shape}")
        af = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1), format="s16", layout="mono")
        af.sample_rate = SAMPLE_RATE
        af.pts = n * SAMPLES_PER_FRAME
        af.time_base = Fraction(1, SAMPLE_RATE)
        return self._audio.encode(af)

    def write_encoded(self, picture: np.ndarray | av.VideoFrame, audio: list[av.Packet]) -> None:
        """Encode and mux the next video frame, and mux that frame's audio packets."""
        vf = picture if isinstance(picture, av.VideoFrame) else bgr_to_yuv_frame(picture)
        vf.pts = self.frames
        vf.time_base = Fraction(1, FPS)
        self._mux(self._video.encode(vf))
        self._mux(audio)
        self.frames += 1

    def close(self) -> None:
        self._mux(self._video.encode(None))
        self._mux(self._audio.encode(None))
        self._finish()

    def _mux(self, packets: list[av.Packet]) -> None:
        """Where encoded packets go; a subclass may send them on to more outputs."""
        self._container.mux(packets)

    def _finish(self) -> None:
        self._container.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Mp4Writer(AvWriter):
    """An MP4 file (moov first, so it plays while downloading)."""

    def __init__(self, path: str | os.PathLike, settings: EncoderSettings = EncoderSettings()) -> None:
        self.path = Path(path)
        check_writable(self.path)
        try:
            container = av.open(str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
        except (OSError, av.error.FFmpegError) as exc:
            raise OutputError(f"{self.path}: cannot open for writing ({exc})") from exc
        super().__init__(container, settings)
