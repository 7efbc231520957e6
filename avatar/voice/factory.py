"""Build the voice a show's settings ask for."""
from __future__ import annotations

import os
from pathlib import Path

from avatar.voice.base import VoiceEngine, VoiceSettings
from avatar.voice.cache import CachedEngine
from avatar.voice.edge import EdgeEngine
from avatar.voice.failover import FailoverEngine
from avatar.voice.offline import OfflineEngine

ENGINES = ("offline", "edge")


def default_cache_dir() -> Path:
    """$LINKUP_CACHE_DIR, else ~/.cache/linkup/voice."""
    env = os.environ.get("LINKUP_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "linkup" / "voice"


def make_voice(
    settings: VoiceSettings, cache_dir: Path | None = None, *, edge_proxy: str | None = None
) -> VoiceEngine:
    """The engine for `settings.engine`; "edge" always falls back to the offline voice.

    With `cache_dir` every engine is cached there (pass default_cache_dir() for the
    usual place); None means no cache.
    """

    def cached(engine: VoiceEngine) -> VoiceEngine:
        return CachedEngine(engine, cache_dir) if cache_dir is not None else engine

    if settings.engine == "offline":
        return cached(OfflineEngine())
    if settings.engine == "edge":
        return FailoverEngine(cached(EdgeEngine(proxy=edge_proxy)), cached(OfflineEngine()))
    raise ValueError(f"unknown voice engine {settings.engine!r}; allowed: {', '.join(ENGINES)}")
