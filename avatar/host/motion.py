"""Idle life for the host: blinks, breathing, head sway and small eye movements.

Everything is a pure function of (seed, frame), so the offline renderer and a
live runner can ask for any frame in any order and get the same pose. Blinks and
eye saccades come from schedules drawn per 60 s chunk from the seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from studio.clock import FPS

CHUNK = 60 * FPS  # frames per schedule chunk
BLINK_SLOT = 4 * FPS  # one blink (sometimes a double) per 4 s slot, at 0..2 s into it: 2..6 s apart
SACCADE_SLOT = FPS  # the eyes shift a little about once a second
DOUBLE_BLINK_P = 0.15
MAX_ANGLE = 3.0
BREATH_HEAD_DY = 0.5  # native px the head rises with a full breath
# slow sways: (amplitudes, base frequencies in Hz); each seed detunes the frequencies and picks phases
SWAY = {
    "dx": ((3.0, 1.6, 0.7), (0.061, 0.137, 0.293)),
    "dy": ((1.2, 0.6), (0.083, 0.191)),
    "angle": ((1.4, 0.8, 0.4), (0.049, 0.117, 0.231)),
    "nod": ((0.5, 0.3), (0.071, 0.211)),
}
MAX_SHIFT = max(sum(SWAY["dx"][0]), sum(SWAY["dy"][0]) + BREATH_HEAD_DY)  # native px, any direction


@dataclass(frozen=True)
class Pose:
    blink: float  # 0 open .. 1 closed
    breath: float  # -1..1, chest and shoulders rise with +1
    head_dx: float  # native 720p pixels, + to the right
    head_dy: float  # native 720p pixels, + down
    head_angle: float  # degrees, + counter-clockwise on screen, within +-3
    nod: float  # -1..1, + tips the face down
    gaze_x: float  # -1..1, eyes' horizontal offset, + to the right of the picture


def _blink_curve(hold: int) -> tuple[float, ...]:
    """Close, hold 1-2 frames, open: 4-5 frames = 160-200 ms at 25 fps."""
    return (0.55,) + (1.0,) * hold + (0.4,)


@dataclass(frozen=True)
class _Sines:
    amps: tuple[float, ...]
    freqs: tuple[float, ...]  # Hz
    phases: tuple[float, ...]

    def at(self, t: float) -> float:
        return sum(a * math.sin(2 * math.pi * f * t + p) for a, f, p in zip(self.amps, self.freqs, self.phases))


class Motion:
    """A seeded, random-access plan of the host's idle motion."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed % (1 << 64)  # SeedSequence takes non-negative entropy only
        rng = np.random.default_rng([self.seed, 0x5E1F])
        self._sway = {
            name: _Sines(amps, tuple(f * rng.uniform(0.9, 1.1) for f in freqs), tuple(rng.uniform(0, 2 * math.pi, len(amps))))
            for name, (amps, freqs) in SWAY.items()
        }
        self._breath_hz = 0.25 * rng.uniform(0.95, 1.05)
        self._breath_phase = rng.uniform(0, 2 * math.pi)
        self._chunk = lru_cache(maxsize=4)(self._make_chunk)

    def _make_chunk(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame blink closure and gaze offset for frames [index*CHUNK, (index+1)*CHUNK)."""
        rng = np.random.default_rng([self.seed, 0xB1, index])
        blink = np.zeros(CHUNK, dtype=np.float32)
        for slot in range(0, CHUNK, BLINK_SLOT):
            start = slot + int(rng.integers(0, 2 * FPS + 1))
            starts = [start]
            if rng.random() < DOUBLE_BLINK_P:
                starts.append(start + int(rng.integers(7, 10)))
            for s in starts:
                curve = _blink_curve(int(rng.integers(1, 3)))
                blink[s : s + len(curve)] = curve
        moves = np.arange(0, CHUNK, SACCADE_SLOT) + rng.integers(0, SACCADE_SLOT, CHUNK // SACCADE_SLOT)
        moves[0] = 0
        targets = rng.normal(0.0, 0.06, moves.size)
        gaze = targets[np.searchsorted(moves, np.arange(CHUNK), side="right") - 1].astype(np.float32)
        return blink, np.clip(gaze, -0.15, 0.15)

    def pose(self, frame: int) -> Pose:
        t = frame / FPS
        blink, gaze = self._chunk(frame // CHUNK)
        breath = math.sin(2 * math.pi * self._breath_hz * t + self._breath_phase)
        sway = self._sway
        return Pose(
            blink=float(blink[frame % CHUNK]),
            breath=breath,
            head_dx=sway["dx"].at(t),
            head_dy=sway["dy"].at(t) - BREATH_HEAD_DY * breath,
            head_angle=max(-MAX_ANGLE, min(MAX_ANGLE, sway["angle"].at(t))),
            nod=sway["nod"].at(t),
            gaze_x=float(gaze[frame % CHUNK]),
        )
