"""Live HLS output: fMP4 segments of one second and a sliding playlist, written by PyAV's hls muxer.

A keyframe on every 25th frame (and never elsewhere) makes every segment exactly one second
and independently decodable, so a player can join at any segment. The playlist carries
EXT-X-PROGRAM-DATE-TIME so players map media time to wall time; it is bounded (old segments
are deleted) because a live stream never ends on its own.
"""
from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import av

from studio.clock import FPS
from studio.media import AvWriter, EncoderSettings, OutputError

PLAYLIST = "index.m3u8"
SEGMENT_SECONDS = 1
LIST_SIZE = 20  # segments kept in the live playlist (and on disk, plus the muxer's small delete threshold)


class HlsWriter(AvWriter):
    """H.264 + AAC as live HLS in `out_dir` (index.m3u8, init.mp4, seg_00000.m4s...); `close` ends the playlist."""

    def __init__(self, out_dir: Path, settings: EncoderSettings) -> None:
        self.out_dir = Path(out_dir)
        # FFmpeg reports a missing or read-only folder only in its log, so make and check it here.
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.out_dir}: cannot create the HLS folder ({exc.strerror or exc})") from exc
        if not os.access(self.out_dir, os.W_OK):
            raise OutputError(f"{self.out_dir}: not writable")
        for stale in [self.out_dir / PLAYLIST, *self.out_dir.glob("seg_*.m4s")]:  # a restarted stream starts afresh
            stale.unlink(missing_ok=True)
        options = {
            "hls_time": str(SEGMENT_SECONDS),
            "hls_list_size": str(LIST_SIZE),
            "hls_segment_type": "fmp4",
            "hls_fmp4_init_filename": "init.mp4",
            "hls_segment_filename": str(self.out_dir / "seg_%05d.m4s"),
            # temp_file: a segment or playlist appears under its name only once complete
            "hls_flags": "program_date_time+independent_segments+delete_segments+temp_file",
        }
        try:
            container = av.open(str(self.out_dir / PLAYLIST), "w", format="hls", options=options)
        except (OSError, av.error.FFmpegError) as exc:
            raise OutputError(f"{self.out_dir}: cannot open HLS output ({exc})") from exc
        keyint = SEGMENT_SECONDS * FPS
        x264 = {"tune": "zerolatency", "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0"}
        super().__init__(container, replace(settings, gop=keyint), x264)

    @property
    def playlist(self) -> Path:
        return self.out_dir / PLAYLIST


def published_segments(playlist: Path) -> int:
    """How many segments the stream has published so far (0 before the playlist exists)."""
    try:
        text = playlist.read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    sequence = next((int(ln.split(":", 1)[1]) for ln in text.splitlines() if ln.startswith("#EXT-X-MEDIA-SEQUENCE:")), 0)
    return sequence + text.count("#EXTINF:")


def media_epoch(playlist: Path) -> float | None:
    """Wall-clock time (epoch seconds) of media time 0, read from EXT-X-PROGRAM-DATE-TIME.

    Every segment is exactly SEGMENT_SECONDS long, so segment k starts at media time k * SEGMENT_SECONDS;
    the first listed segment's date minus that is the epoch a page uses to turn its player's
    position into media time. None before the playlist has a dated segment.
    """
    try:
        lines = playlist.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    sequence = next((int(ln.split(":", 1)[1]) for ln in lines if ln.startswith("#EXT-X-MEDIA-SEQUENCE:")), 0)
    date = next((ln.split(":", 1)[1] for ln in lines if ln.startswith("#EXT-X-PROGRAM-DATE-TIME:")), None)
    if date is None:
        return None
    return datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp() - sequence * SEGMENT_SECONDS
