"""Build the voice a show's settings or a brand's profile ask for."""
from __future__ import annotations

import hashlib
import os
from itertools import pairwise
from pathlib import Path

from avatar.voice.base import VoiceEngine, VoiceSettings
from avatar.voice.cache import CachedEngine
from avatar.voice.edge import EdgeEngine
from avatar.voice.failover import FailoverEngine
from avatar.voice.http_engine import HttpSpeechEngine
from avatar.voice.offline import OfflineEngine
from avatar.voice.profile import ENGINES, VoiceProfile
from avatar.voice.recorded import RecordedEngine

Chain = list[tuple[VoiceEngine, VoiceSettings]]


def default_cache_dir() -> Path:
    """$LINKUP_CACHE_DIR, else ~/.cache/linkup/voice."""
    env = os.environ.get("LINKUP_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "linkup" / "voice"


def _engine(
    engine: str, profile: VoiceProfile, cache_dir: Path | None, edge_proxy: str | None
) -> VoiceEngine:
    """One engine, cached where synthesis costs something (recordings are read as they are)."""
    if engine == "recorded":
        return RecordedEngine(Path(profile.recordings))
    if engine == "offline":
        built: VoiceEngine = OfflineEngine()
    elif engine == "edge":
        built = EdgeEngine(proxy=edge_proxy, timeout=profile.timeout_for("edge"))
    else:
        built = HttpSpeechEngine(profile.url, profile.model, timeout=profile.timeout_for("http"))
    if cache_dir is None:
        return built
    if engine == "http":  # two servers may share voice names: each gets its own cache folder
        server = hashlib.sha256(f"{profile.url}\x00{profile.model}".encode()).hexdigest()[:16]
        return CachedEngine(built, Path(cache_dir) / f"http-{server}")
    return CachedEngine(built, Path(cache_dir))


def voice_chain(
    profile: VoiceProfile, cache_dir: Path | None = None, *, edge_proxy: str | None = None
) -> Chain:
    """Who tries a line, in order: the profile's engine, its fallback, then the offline voice."""
    chain = [(profile.engine, profile.settings()), (profile.fallback, profile.fallback_settings())]
    chain.append(("offline", VoiceSettings("offline", "", profile.rate, profile.pitch, profile.volume)))
    seen: set[str] = set()
    out: Chain = []
    for engine, settings in chain:
        if engine not in seen:
            seen.add(engine)
            out.append((_engine(engine, profile, cache_dir, edge_proxy), settings))
    return out


def make_voice(
    settings: VoiceSettings | VoiceProfile,
    cache_dir: Path | None = None,
    *,
    edge_proxy: str | None = None,
) -> VoiceEngine:
    """The engine for a show's `settings` or a brand's profile; every line ends up spoken.

    Anything but the offline voice falls back per line, down to the offline voice.
    VoiceSettings can name only "offline" and "edge" (the other engines need a
    profile's URL or recordings). With `cache_dir` synthesised lines are cached there
    (pass default_cache_dir() for the usual place); None means no cache.
    """
    if isinstance(settings, VoiceSettings):
        if settings.engine not in ("offline", "edge"):
            hint = " (needs a voice profile)" if settings.engine in ENGINES else ""
            raise ValueError(
                f"unknown voice engine {settings.engine!r}{hint}; allowed: {', '.join(ENGINES)}"
            )
        profile = VoiceProfile.from_settings(settings)
    else:
        profile = settings
    chain = voice_chain(profile, cache_dir, edge_proxy=edge_proxy)
    engine, _ = chain[-1]
    for (primary, _), (_, fallback_settings) in reversed(list(pairwise(chain))):
        engine = FailoverEngine(primary, engine, fallback_settings)
    return engine
