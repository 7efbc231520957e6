"""Disk cache of spoken lines: a rerun of the same script costs no synthesis.

Product scripts repeat ("3、2、1 上链接") and the edge voice is slow and metered, so
each (engine, settings, text) is synthesised once.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from avatar.voice.atomic import write_atomic
from avatar.voice.base import Mark, Speech, VoiceEngine, VoiceSettings


class CachedEngine:
    """Wraps an engine; hits come from `cache_dir`, misses are synthesised and stored."""

    def __init__(self, inner: VoiceEngine, cache_dir: Path) -> None:
        self.inner = inner
        self.cache_dir = Path(cache_dir)
        self.name = inner.name

    def path_for(self, text: str, settings: VoiceSettings) -> Path:
        key = "\x00".join((self.inner.name, settings.cache_key(), text))
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()}.npz"

    async def synthesize(self, text: str, settings: VoiceSettings) -> Speech:
        path = self.path_for(text, settings)
        speech = await asyncio.to_thread(load_speech, path)
        if speech is None:
            speech = await self.inner.synthesize(text, settings)
            await asyncio.to_thread(save_speech, path, speech)
        return speech


def load_speech(path: Path) -> Speech | None:
    """The cached Speech, or None when missing or unreadable (it will be rewritten)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            pcm = f["pcm"].astype(np.int16, copy=False)
            marks = tuple(
                Mark(int(p), int(s), str(k))
                for p, s, k in zip(f["mark_pos"], f["mark_sample"], f["mark_kind"])
            )
            return Speech(pcm, marks, str(f["engine"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def save_speech(path: Path, speech: Speech) -> None:
    """Written atomically: a crash never leaves half a cache file."""
    buf = io.BytesIO()
    np.savez(
        buf,
        pcm=speech.pcm,
        mark_pos=np.array([m.pos for m in speech.marks], dtype=np.int64),
        mark_sample=np.array([m.sample for m in speech.marks], dtype=np.int64),
        mark_kind=np.array([m.kind for m in speech.marks], dtype=str),
        engine=np.array(speech.engine),
    )
    write_atomic(path, buf.getvalue())
