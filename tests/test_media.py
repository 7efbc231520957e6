"""The MP4 writer: what it writes decodes back as H.264 + AAC on one clock."""
from __future__ import annotations

import av
import numpy as np
import pytest

from studio.clock import SAMPLE_RATE, SAMPLES_PER_FRAME
from studio.media import EncoderSettings, Mp4Writer, OutputError, check_writable


def test_written_file_decodes_with_matching_lengths_and_content(tmp_path):
    out = tmp_path / "clip.mp4"
    n = 50
    t = np.arange(n * SAMPLES_PER_FRAME) / SAMPLE_RATE
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    tone[: 25 * SAMPLES_PER_FRAME] = 0  # first second silent
    with Mp4Writer(out, EncoderSettings(320, 240, preset="ultrafast")) as w:
        for i in range(n):
            frame = np.zeros((240, 320, 3), np.uint8)
            frame[:, : 6 * i + 6] = (0, 0, 255)  # a red bar that grows each frame
            w.write(frame, tone[i * SAMPLES_PER_FRAME : (i + 1) * SAMPLES_PER_FRAME])

    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, a.codec_context.name) == ("h264", "aac")
        assert (v.width, v.height, v.average_rate, a.sample_rate) == (320, 240, 25, 48000)
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(v)]
    with av.open(str(out)) as c:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert len(frames) == n
    assert abs(len(pcm) - n * SAMPLES_PER_FRAME) <= SAMPLES_PER_FRAME
    red_cols = [(f[120, :, 2] > 128).sum() for f in frames]
    assert red_cols[0] < red_cols[25] < red_cols[-1]
    rms = lambda x: float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    assert rms(pcm[2000:20000]) < 0.001  # AAC decodes to float in [-1, 1]
    assert rms(pcm[30 * SAMPLES_PER_FRAME : 45 * SAMPLES_PER_FRAME]) > 0.1


def test_unwritable_outputs_are_refused_before_rendering(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(tmp_path / "missing" / "show.mp4")
    with pytest.raises(OutputError, match="is a folder"):
        check_writable(tmp_path)


def test_wrong_audio_length_is_an_error(tmp_path):
    with Mp4Writer(tmp_path / "x.mp4", EncoderSettings(160, 120, preset="ultrafast")) as w:
        with pytest.raises(ValueError, match="1920 samples"):
            w.write(np.zeros((120, 160, 3), np.uint8), np.zeros(100, np.int16))
        w.write(np.zeros((120, 160, 3), np.uint8), np.zeros(SAMPLES_PER_FRAME, np.int16))
