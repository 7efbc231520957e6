"""How alive the photo host looks, measured on its rendered pixels.

Rigs the test photo (scikit-image's astronaut), has the host speak a sample script in the
offline voice with pauses between lines, renders every frame at 720p and measures:
- lipsync_lag_frames: the lag (frames, + = mouth after sound) at the peak of the
  cross-correlation between the mouth opening seen on the frames (dark pixels in the
  mouth box, above the photo's own) and the audio's per-frame RMS envelope;
- mouth_closed_in_silence: share of silent frames whose mouth box is as photographed;
- blinks_per_min: eye closures seen on the frames (the pupils' dark pixels vanish);
- host_ms_per_frame: the host's render time per frame (mean; p95 too).
Bars: |lag| <= 1, >= 0.95, 8-30, <= 5 ms. Prints one JSON line last.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avatar.host.factory import make_host
from avatar.host.lips import VisemeTrack, drive, mouth_openness, nod_after
from avatar.host.pack import PhotoPack, load_pack
from avatar.photo.rig import build_pack
from avatar.voice.base import VoiceSettings
from avatar.voice.offline import OfflineEngine
from studio.clock import FPS, SAMPLES_PER_FRAME, frame_of_sample, seconds_to_samples

PHOTO = Path(__file__).resolve().parent.parent / "tests" / "data" / "astronaut.png"
SCRIPT = [
    "大家好，我是AI主播，欢迎来到直播间！",
    "今天给大家带来一款保温杯，五百毫升，316不锈钢内胆。",
    "保温十二个小时，冬天出门也不怕。",
    "原价九十九，直播间只要五十九块！",
    "喜欢的宝宝们，赶紧点击下方小黄车。",
]
PAUSE = seconds_to_samples(0.8)
MAX_LAG = 5


def speak(seconds: float) -> tuple[np.ndarray, list[tuple[int, VisemeTrack]]]:
    """The script (repeated to fill `seconds`) with pauses: int16 PCM and where each line's visemes start."""
    engine, settings = OfflineEngine(), VoiceSettings()
    speeches = [(t, asyncio.run(engine.synthesize(t, settings))) for t in SCRIPT]
    total = seconds_to_samples(seconds)
    audio = np.zeros(total, np.int16)
    tracks = []
    at, k = seconds_to_samples(1.0), 0
    while True:
        text, sp = speeches[k % len(speeches)]
        if at + sp.samples + PAUSE > total:
            break
        audio[at : at + sp.samples] = sp.pcm
        tracks.append((at, VisemeTrack.of(text, sp)))
        at += sp.samples + PAUSE
        k += 1
    return audio, tracks


def boxes(pack: PhotoPack) -> tuple[tuple[slice, slice], list[tuple[slice, slice]]]:
    (lx, _), (rx, _) = pack.points["mouth_left"], pack.points["mouth_right"]
    top, bottom = pack.points["upper_lip"][1], pack.points["lower_lip"][1] + pack.rig.mouth_max_open
    m = 14
    mouth = (slice(int(top - m), int(bottom + m)), slice(int(lx - m), int(rx + m)))
    eyes = [(slice(int(e.center[1] - e.height), int(e.center[1] + e.height)),
             slice(int(e.center[0] - e.width / 2), int(e.center[0] + e.width / 2))) for e in (pack.rig.eye_left, pack.rig.eye_right)]
    return mouth, eyes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s of video instead of 120 s")
    args = parser.parse_args()
    seconds = 20.0 if args.quick else 120.0
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        pack = load_pack(build_pack(PHOTO.read_bytes(), Path(tmp) / "astronaut"))
        rig_s = time.perf_counter() - t0
    assert isinstance(pack, PhotoPack)
    audio, tracks = speak(seconds)
    frames = audio.size // SAMPLES_PER_FRAME
    opening = mouth_openness(audio, frames)
    starts = [s for s, _ in tracks]
    nods = sorted(frame_of_sample(s + e) for s, t in tracks for e in t.sentence_ends)
    host = make_host(pack, 1280, 720, seed=0)
    mouth_box, eye_boxes = boxes(pack)
    rest = int((pack.photo[mouth_box].mean(axis=2) < 60).sum())
    mouth, pupils, cost = np.zeros(frames), np.zeros(frames), np.zeros(frames)
    for n in range(frames):
        mid = n * SAMPLES_PER_FRAME + SAMPLES_PER_FRAME // 2
        i = int(np.searchsorted(starts, mid + 2000, side="right")) - 1  # the line whose visemes lead into this frame
        viseme = tracks[i][1].at(mid - starts[i]) if i >= 0 else None
        lips = drive(viseme, float(opening[n]))
        j = int(np.searchsorted(nods, n, side="right")) - 1
        t = time.perf_counter()
        picture = host.render(n, lips.open, 0.0, wide=lips.wide, nod=nod_after(n - nods[j]) if j >= 0 else 0.0)
        cost[n] = time.perf_counter() - t
        mouth[n] = int((picture[mouth_box].mean(axis=2) < 60).sum()) - rest
        pupils[n] = sum(int((picture[b].max(axis=2) < 75).sum()) for b in eye_boxes)
    frame_audio = audio[: frames * SAMPLES_PER_FRAME].reshape(frames, SAMPLES_PER_FRAME).astype(np.float64)
    envelope = np.sqrt((frame_audio**2).mean(axis=1))

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / (x.std() + 1e-9)

    zm, ze = z(mouth), z(envelope)
    corr = {lag: float(np.mean(zm[max(lag, 0) : frames + min(lag, 0)] * ze[max(-lag, 0) : frames - max(lag, 0)]))
            for lag in range(-MAX_LAG, MAX_LAG + 1)}
    lag = max(corr, key=corr.get)
    silent = ~frame_audio.any(axis=1)
    closed = np.abs(mouth[silent]) <= 5
    shut = pupils < 0.25 * np.median(pupils)
    blinks = int(np.sum(shut[1:] & ~shut[:-1]) + shut[0])
    result = {
        "lipsync_lag_frames": lag,
        "lipsync_peak_correlation": round(corr[lag], 3),
        "mouth_closed_in_silence": round(float(closed.mean()), 4),
        "blinks_per_min": round(blinks / (frames / FPS / 60), 1),
        "host_ms_per_frame": round(float(cost.mean() * 1000), 2),
        "host_ms_p95": round(float(np.percentile(cost, 95) * 1000), 2),
        "frames": frames,
        "silent_frames": int(silent.sum()),
        "rig_seconds": round(rig_s, 2),
        "resolution": "1280x720",
        "note": "timings on a shared, noisy machine",
    }
    print(f"{frames} frames, {len(tracks)} lines; cross-correlation by lag: "
          + " ".join(f"{k:+d}:{v:.2f}" for k, v in corr.items()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
