"""Audio plumbing shared by the voice engines.

Every engine's raw output passes through `master` so that a line sounds the same
length-wise and loudness-wise whichever engine spoke it (a failover mid-show must
not jump in volume).
"""
from __future__ import annotations

import io

import av
import numpy as np

from avatar.voice.base import VoiceError
from studio.clock import SAMPLE_RATE

_WINDOW_MS = 10
_VOICED_RANGE_DB = 30.0  # windows this far below the loudest one count as pauses
_TRIM_FLOOR = 0.01  # samples below 1 % of the peak count as silence when trimming
_PEAK_LIMIT_DBFS = -1.0


def resample(pcm: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Int16 mono at `from_rate` -> int16 mono at `to_rate` (libswresample, no delay)."""
    pcm = np.ascontiguousarray(pcm, dtype=np.int16)
    if from_rate == to_rate or pcm.size == 0:
        return pcm.copy()
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)
    frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
    frame.sample_rate = from_rate
    frame.pts = 0
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.int16, copy=False) if out else pcm[:0].copy()


def _window_rms(x: np.ndarray, window: int) -> np.ndarray:
    n = x.size // window
    if n == 0:
        return np.sqrt(np.mean(x**2, keepdims=True)) if x.size else np.zeros(0)
    return np.sqrt(np.mean(x[: n * window].reshape(n, window) ** 2, axis=1))


def normalize_loudness(
    pcm: np.ndarray, target_dbfs: float = -20.0, rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Scale so the voiced parts sit at `target_dbfs` RMS.

    Pauses are left out of the measurement so a line with a long comma pause is not
    pushed louder than one without. The gain is lowered if it would lift the peak
    above -1 dBFS (no clipping, no compressor).
    """
    x = pcm.astype(np.float64) / 32768.0
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return pcm.astype(np.int16, copy=True)
    rms = _window_rms(x, max(1, rate * _WINDOW_MS // 1000))
    voiced = rms[rms >= rms.max() * 10 ** (-_VOICED_RANGE_DB / 20)]
    level = float(np.sqrt(np.mean(voiced**2)))
    gain = min(10 ** (target_dbfs / 20) / level, 10 ** (_PEAK_LIMIT_DBFS / 20) / peak)
    return np.clip(np.round(x * gain * 32768.0), -32768, 32767).astype(np.int16)


def trim_silence(
    pcm: np.ndarray, keep_ms: int = 50, rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, int]:
    """Cut leading/trailing silence down to `keep_ms`; returns (audio, samples cut at start).

    The start offset lets callers shift their marks. All-silent input comes back empty.
    """
    level = np.abs(pcm.astype(np.int32))
    loud = np.flatnonzero(level > level.max(initial=0) * _TRIM_FLOOR)
    if loud.size == 0:
        return pcm[:0].copy(), 0
    keep = rate * keep_ms // 1000
    start = max(0, int(loud[0]) - keep)
    stop = min(pcm.size, int(loud[-1]) + 1 + keep)
    return pcm[start:stop].copy(), start


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Any audio PyAV can read (MP3, WAV, ...) -> (int16 mono PCM, its sample rate)."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise VoiceError("audio data holds no audio stream")
            stream = container.streams.audio[0]
            rate = stream.rate or stream.codec_context.sample_rate
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            chunks = [
                out.to_ndarray().reshape(-1)
                for frame in container.decode(stream)
                for out in resampler.resample(frame)
            ]
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except av.FFmpegError as exc:
        raise VoiceError(f"cannot decode audio ({len(data)} bytes): {exc}") from exc
    if not chunks or sum(c.size for c in chunks) == 0:
        raise VoiceError(f"audio data ({len(data)} bytes) decoded to no samples")
    return np.concatenate(chunks).astype(np.int16, copy=False), int(rate)


def master(pcm: np.ndarray, rate: int, volume: int = 0) -> tuple[np.ndarray, int]:
    """Raw engine audio -> show audio: 48 kHz, trimmed, loudness-normalised.

    `volume` is VoiceSettings.volume (percent) applied on top of the common target,
    so it survives normalisation. Returns (pcm, samples cut at the start, at 48 kHz).
    """
    audio, cut = trim_silence(resample(pcm, rate))
    if audio.size == 0:
        raise VoiceError("the engine produced only silence")
    gain_db = 20 * np.log10(max(1.0 + volume / 100, 0.01))
    return normalize_loudness(audio, -20.0 + gain_db), cut
