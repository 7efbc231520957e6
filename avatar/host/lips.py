"""How far the host's mouth opens on each video frame, from the show's audio.

Frame n looks only at its own samples [1920n, 1920n + 1920), so the lips can be
neither early nor late by more than the frame itself. Loudness is judged against
the speaker's recent level (not an absolute scale), so quiet and loud voices both
open the mouth with their syllables, and the mouth shuts in every pause.
"""
from __future__ import annotations

import numpy as np

from studio.clock import FPS, SAMPLES_PER_FRAME

SILENCE_DBFS = -45.0  # below this RMS a frame is a pause: the mouth is shut
LEVEL_WINDOW = 2 * FPS  # frames over which the speech level is averaged (voiced frames only)
LEVEL_FLOOR_DBFS = -30.0  # faint audio never counts as a full voice
SPAN_DB = 21.0  # a frame this far below the speech level (plus headroom) stays shut
HEADROOM_DB = 3.0  # frames this much above the level open fully
RELEASE = 0.5  # a frame keeps at least this share of the previous frame's opening (one frame only)
BLOCK = 1500  # frames per block while measuring, to bound memory on long shows


def frame_dbfs(pcm: np.ndarray, n_frames: int) -> np.ndarray:
    """RMS level of each frame's own samples in dBFS (-inf for digital silence; missing samples are silence)."""
    out = np.empty(n_frames, dtype=np.float64)
    for first in range(0, n_frames, BLOCK):
        count = min(BLOCK, n_frames - first)
        block = np.zeros(count * SAMPLES_PER_FRAME, dtype=np.float32)
        chunk = pcm[first * SAMPLES_PER_FRAME : (first + count) * SAMPLES_PER_FRAME]
        block[: chunk.size] = chunk
        frames = block.reshape(count, SAMPLES_PER_FRAME)
        mean_square = np.einsum("ij,ij->i", frames, frames) / SAMPLES_PER_FRAME
        with np.errstate(divide="ignore"):
            out[first : first + count] = 10 * np.log10(mean_square / 32768.0**2)
    return out


def _speech_level(db: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Mean level of the voiced frames among the last LEVEL_WINDOW frames (this one included)."""
    def window_sum(x: np.ndarray) -> np.ndarray:
        c = np.concatenate(([0.0], np.cumsum(x)))
        n = np.arange(1, x.size + 1)
        return c[n] - c[np.maximum(n - LEVEL_WINDOW, 0)]

    total = window_sum(np.where(voiced, db, 0.0))
    count = window_sum(voiced.astype(np.float64))
    level = np.divide(total, count, out=np.full_like(total, LEVEL_FLOOR_DBFS), where=count > 0)
    return np.maximum(level, LEVEL_FLOOR_DBFS)


def mouth_openness(pcm: np.ndarray, n_frames: int) -> np.ndarray:
    """Mouth opening 0..1 (float32) for frames 0..n_frames-1 of an int16 48 kHz mono track; 0.0 exactly in pauses."""
    pcm = np.asarray(pcm)
    if pcm.ndim != 1:
        raise ValueError(f"mouth_openness needs mono PCM, got shape {pcm.shape}")
    db = frame_dbfs(pcm, n_frames)
    voiced = db >= SILENCE_DBFS
    level = _speech_level(db, voiced)
    raw = np.where(voiced, np.clip((db - level + SPAN_DB - HEADROOM_DB) / SPAN_DB, 0.0, 1.0), 0.0)
    held = np.zeros_like(raw)
    held[1:] = raw[:-1] * RELEASE
    return np.where(voiced, np.maximum(raw, held), 0.0).astype(np.float32)
