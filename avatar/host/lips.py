"""How far the host's mouth opens on each video frame, from the show's audio.

Frame n looks only at its own samples [1920n, 1920n + 1920), so the lips can be
neither early nor late by more than the frame itself. Loudness is judged against
the speaker's recent level (not an absolute scale), so quiet and loud voices both
open the mouth with their syllables, and the mouth shuts in every pause.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from studio.clock import FPS, SAMPLES_PER_FRAME

SILENCE_DBFS = -45.0  # below this RMS a frame is a pause: the mouth is shut
LEVEL_WINDOW = 2 * FPS  # frames over which the speech level is averaged (voiced frames only)
LEVEL_FLOOR_DBFS = -30.0  # faint audio never counts as a full voice
SPAN_DB = 21.0  # a frame this far below the speech level (plus headroom) stays shut
HEADROOM_DB = 3.0  # frames this much above the level open fully
RELEASE = 0.5  # a frame keeps at least this share of the previous frame's opening (one frame only)


class MouthFollower:
    """The mouth opening of each frame as its audio arrives, for a live show that has no whole track.

    It is the one definition: mouth_openness runs it over a track, so live and offline lips agree exactly.
    """

    def __init__(self) -> None:
        self._window: deque[float | None] = deque(maxlen=LEVEL_WINDOW)  # dBFS of recent voiced frames, None if silent
        self._last_raw = 0.0

    def next(self, chunk: np.ndarray) -> float:
        """Opening 0..1 of the frame whose samples are `chunk` (int16, up to 1920; missing ones are silence)."""
        samples = np.asarray(chunk, dtype=np.float64).reshape(-1)[:SAMPLES_PER_FRAME]
        mean_square = float(np.dot(samples, samples)) / SAMPLES_PER_FRAME
        db = 10 * math.log10(mean_square / 32768.0**2) if mean_square > 0 else -math.inf
        voiced = db >= SILENCE_DBFS
        self._window.append(db if voiced else None)
        levels = [d for d in self._window if d is not None]
        level = max(sum(levels) / len(levels), LEVEL_FLOOR_DBFS) if levels else LEVEL_FLOOR_DBFS
        raw = min(max((db - level + SPAN_DB - HEADROOM_DB) / SPAN_DB, 0.0), 1.0) if voiced else 0.0
        opening = max(raw, self._last_raw * RELEASE) if voiced else 0.0
        self._last_raw = raw
        return float(np.float32(opening))


def mouth_openness(pcm: np.ndarray, n_frames: int) -> np.ndarray:
    """Mouth opening 0..1 (float32) for frames 0..n_frames-1 of an int16 48 kHz mono track; 0.0 exactly in pauses."""
    pcm = np.asarray(pcm)
    if pcm.ndim != 1:
        raise ValueError(f"mouth_openness needs mono PCM, got shape {pcm.shape}")
    follower = MouthFollower()
    return np.array(
        [follower.next(pcm[n * SAMPLES_PER_FRAME : (n + 1) * SAMPLES_PER_FRAME]) for n in range(n_frames)],
        dtype=np.float32,
    )
