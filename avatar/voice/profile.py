"""A brand's voice: which engine speaks, how, and who takes over when it cannot.

Profiles come from brands (uploaded files, the brand page), so every field is
checked here and a bad one is reported in one line naming the file and field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from avatar.voice.base import VoiceSettings

ENGINES = ("offline", "edge", "http", "recorded")
FALLBACKS = ("offline", "edge", "http")  # engines that can speak any line
DEFAULT_TIMEOUT = {"edge": 10.0, "http": 3.0}  # seconds per line for the network engines
_FIELDS = (
    "engine", "name", "rate", "pitch", "volume", "fallback", "fallback_name",
    "url", "model", "recordings", "timeout",
)


class ProfileError(ValueError):
    """str(err) is ONE line: 'SOURCE: field: what is wrong'."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        super().__init__(f"{source}: {field}: {problem}")
        self.source = source
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class VoiceProfile:
    engine: str = "offline"
    name: str = ""  # the engine's voice ("" = its default); "http": the server's voice; "recorded": the fallback's
    rate: int = 0  # percent, -50..100
    pitch: int = 0  # percent, -50..50 (the http API has no pitch: ignored there)
    volume: int = 0  # percent, -50..50, on top of the common loudness target
    fallback: str = "offline"  # speaks lines the engine cannot; the offline voice always ends the chain
    fallback_name: str = ""  # the fallback engine's voice ("" = its default, or `name` when recorded)
    url: str = ""  # http: base URL of the OpenAI-compatible speech server
    model: str = ""  # http: the "model" field of the request
    recordings: str = ""  # recorded: folder of processed uploads (see uploads.py)
    timeout: float | None = None  # seconds one line may take before the fallback speaks it

    @classmethod
    def from_settings(cls, settings: VoiceSettings) -> VoiceProfile:
        """A rundown's host voice as a profile (its engine, falling back to the offline voice)."""
        return cls(settings.engine, settings.name, settings.rate, settings.pitch, settings.volume)

    def settings(self) -> VoiceSettings:
        return VoiceSettings(self.engine, self.name, self.rate, self.pitch, self.volume)

    def fallback_settings(self) -> VoiceSettings:
        """Recordings have no voice name, so a recorded profile's `name` is its TTS voice."""
        name = self.fallback_name or (self.name if self.engine == "recorded" else "")
        return replace(self.settings(), engine=self.fallback, name=name)

    def timeout_for(self, engine: str) -> float:
        """Per-line timeout of a network engine: the profile's for its primary, else the default."""
        if engine == self.engine and self.timeout is not None:
            return self.timeout
        return DEFAULT_TIMEOUT[engine]


def profile_fields(profile: VoiceProfile) -> dict[str, Any]:
    """The profile as a JSON/YAML mapping (what is stored and what the API answers)."""
    return {f: getattr(profile, f) for f in _FIELDS}


def _choice(doc: dict[str, Any], field: str, allowed: tuple[str, ...], default: str) -> str:
    value = doc.get(field, default)
    if value not in allowed:
        raise ValueError(field, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _int(doc: dict[str, Any], field: str, low: int, high: int) -> int:
    value = doc.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(field, f"must be a whole number from {low} to {high}, got {value!r}")
    return value


def _text(doc: dict[str, Any], field: str, limit: int = 200) -> str:
    value = doc.get(field, "")
    if not isinstance(value, str) or len(value) > limit or "\n" in value:
        raise ValueError(field, f"must be one line of text up to {limit} characters, got {value!r:.60}")
    return value.strip()


def _timeout(doc: dict[str, Any]) -> float | None:
    value = doc.get("timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and 0.1 <= value <= 60
    ):
        raise ValueError("timeout", f"must be seconds from 0.1 to 60, got {value!r}")
    return float(value)


def _check(doc: object) -> VoiceProfile:
    if not isinstance(doc, dict):
        raise ValueError("(top)", f"must be a mapping of {', '.join(_FIELDS)}")
    unknown = sorted(set(map(str, doc)) - set(_FIELDS))
    if unknown:
        raise ValueError(unknown[0], f"unknown field; allowed: {', '.join(_FIELDS)}")
    profile = VoiceProfile(
        engine=_choice(doc, "engine", ENGINES, "offline"),
        name=_text(doc, "name", 100),
        rate=_int(doc, "rate", -50, 100),
        pitch=_int(doc, "pitch", -50, 50),
        volume=_int(doc, "volume", -50, 50),
        fallback=_choice(doc, "fallback", FALLBACKS, "offline"),
        fallback_name=_text(doc, "fallback_name", 100),
        url=_text(doc, "url"),
        model=_text(doc, "model", 100),
        recordings=_text(doc, "recordings", 500),
        timeout=_timeout(doc),
    )
    if profile.fallback == profile.engine and profile.engine != "offline":
        raise ValueError("fallback", f"must differ from engine {profile.engine!r}")
    if "http" in (profile.engine, profile.fallback):
        parts = urlsplit(profile.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("url", f"the http engine needs an http(s):// server URL, got {profile.url!r}")
    if profile.engine == "recorded" and not profile.recordings:
        raise ValueError("recordings", "the recorded engine needs the folder of recorded lines")
    return profile


def parse_profile(doc: object, source: str = "profile") -> VoiceProfile:
    """A checked profile from a parsed mapping; ProfileError names `source` and the field."""
    try:
        return _check(doc)
    except ValueError as exc:
        field, problem = exc.args
        raise ProfileError(source, field, problem) from None


def load_profile(path: Path) -> VoiceProfile:
    """A profile file (YAML or JSON); a relative `recordings` folder is taken from the file's folder."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(str(path), "(file)", exc.strerror or str(exc)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ProfileError(str(path), "(file)", f"not YAML/JSON: {str(exc).splitlines()[0]}") from None
    profile = parse_profile(doc, str(path))
    if profile.recordings and not Path(profile.recordings).is_absolute():
        profile = replace(profile, recordings=str(path.parent / profile.recordings))
    return profile
