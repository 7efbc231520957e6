"""The one media clock.

Audio is master: frame n spans samples [1920n, 1920n + 1920). Every timestamp in
LinkUp is derived from these counters, never from the wall clock.
"""
from __future__ import annotations

FPS = 25
SAMPLE_RATE = 48_000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 1920


def frame_of_sample(sample: int) -> int:
    """The video frame during which `sample` plays."""
    return sample // SAMPLES_PER_FRAME


def first_sample_of_frame(frame: int) -> int:
    return frame * SAMPLES_PER_FRAME


def frames_for_samples(samples: int) -> int:
    """Frames needed to cover `samples` audio samples (rounding up)."""
    return -(-samples // SAMPLES_PER_FRAME)


def seconds_to_samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def samples_to_seconds(samples: int) -> float:
    return samples / SAMPLE_RATE
