"""Offline render speed: the demo show, unpaced, against bare libx264 on the same frames.

Prints frames/s, the multiple of real time, CPU cores used, and the ratio to a
bare libx264 encode (video only, same preset, same frames, same run). Bar for
720p on the 2-core machine: >= 4x real time and >= 60% of bare x264.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from script_gen.rundown import load_rundown
from studio.clock import FPS
from studio.media import RESOLUTIONS, EncoderSettings, bgr_to_yuv_frame
from studio.render import (
    DEMO_RUNDOWN,
    RenderOptions,
    ShowRenderer,
    encode_show,
    prepare_show,
)


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def bare_x264(frames: list[av.VideoFrame], settings: EncoderSettings, out: Path) -> None:
    with av.open(str(out), "w", format="mp4") as container:
        v = container.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = settings.width, settings.height, "yuv420p"
        v.codec_context.time_base = Fraction(1, FPS)
        v.codec_context.gop_size = settings.gop
        v.options = {"preset": settings.preset, "crf": str(settings.crf)}
        for n, frame in enumerate(frames):
            frame.pts = n
            container.mux(v.encode(frame))
        container.mux(v.encode(None))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--resolution", choices=sorted(RESOLUTIONS), default="720p")
    ap.add_argument("--preset", default=RenderOptions.preset)
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames (default: the whole show)")
    ap.add_argument("--quick", action="store_true", help="first 500 frames")
    args = ap.parse_args()
    limit = 500 if args.quick else args.frames

    width, height = RESOLUTIONS[args.resolution]
    settings = EncoderSettings(width, height, preset=args.preset)
    show = asyncio.run(prepare_show(load_rundown(DEMO_RUNDOWN), RenderOptions()))
    renderer = ShowRenderer(show, width, height)
    n = show.timeline.frames if limit is None else min(limit, show.timeline.frames)

    with tempfile.TemporaryDirectory() as tmp:
        written, wall, cpu = timed(lambda: encode_show(renderer, Path(tmp) / "show.mp4", settings, frames=n))
        frames = [bgr_to_yuv_frame(renderer.frame(i)) for i in range(n)]
        _, bare_wall, bare_cpu = timed(lambda: bare_x264(frames, settings, Path(tmp) / "bare.mp4"))
        _, host_wall, _ = timed(lambda: [renderer.frame(i).shape for i in range(min(n, 250))])

    fps = written / wall
    bare_fps = n / bare_wall
    result = {
        "resolution": args.resolution,
        "preset": args.preset,
        "frames": written,
        "fps": round(fps, 1),
        "x_realtime": round(fps / FPS, 2),
        "cores_used": round(cpu / wall, 2),
        "cpu_per_realtime_second": round(cpu / (written / FPS), 3),
        "bare_x264_fps": round(bare_fps, 1),
        "bare_x264_cores": round(bare_cpu / bare_wall, 2),
        "ratio_to_bare_x264": round(fps / bare_fps, 3),
        "compose_ms_per_frame": round(host_wall / min(n, 250) * 1000, 2),
    }
    print(f"render {args.resolution} {args.preset}: {fps:.1f} fps = {fps / FPS:.2f}x real time, "
          f"{cpu / wall:.2f} cores; bare x264 {bare_fps:.1f} fps; ratio {fps / bare_fps:.0%}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
