"""Keep the show talking when the preferred voice cannot speak a line."""
from __future__ import annotations

import logging
from dataclasses import replace

from avatar.voice.base import Speech, VoiceEngine, VoiceError, VoiceSettings

log = logging.getLogger("linkup.voice")


class FailoverEngine:
    """Tries `primary` per line; on VoiceError speaks that line with `fallback`.

    Failover is per line, so the primary gets another chance on the next line
    (a network blip costs one line of the neural voice, not the whole show).
    Speech.engine tells who actually spoke.
    """

    def __init__(
        self,
        primary: VoiceEngine,
        fallback: VoiceEngine,
        fallback_settings: VoiceSettings | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.fallback_settings = fallback_settings
        self.name = primary.name

    async def synthesize(self, text: str, settings: VoiceSettings) -> Speech:
        try:
            return await self.primary.synthesize(text, settings)
        except VoiceError as exc:
            log.warning(
                "%s voice failed (%s); speaking this line with the %s voice",
                self.primary.name,
                exc,
                self.fallback.name,
            )
        fallback_settings = self.fallback_settings or replace(
            settings, engine=self.fallback.name, name=""
        )
        return await self.fallback.synthesize(text, fallback_settings)
