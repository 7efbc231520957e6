"""A brand's own speech server (CosyVoice, fish-speech, ...) through the OpenAI-compatible API.

POST {url}/v1/audio/speech with {"model", "input", "voice", "response_format": "wav",
"speed"}; servers answer WAV, MP3 or whatever they like, so the body is decoded by
content, not by header. The server is the brand's and may die mid-show: every failure,
including a slow answer, becomes VoiceError within `timeout` so the fallback speaks.
"""
from __future__ import annotations

import asyncio

import aiohttp

from avatar.voice.audio import decode_audio, master
from avatar.voice.base import Speech, VoiceError, VoiceSettings
from avatar.voice.recorded import envelope_marks
from avatar.voice.text import tokenize

CONNECT_TIMEOUT = 1.0  # a dead server refuses or times out here, well before the line's timeout


def speech_url(url: str) -> str:
    """Base URL (with or without a trailing /v1) -> the speech endpoint."""
    base = url.rstrip("/")
    return f"{base.removesuffix('/v1')}/v1/audio/speech"


def request_body(text: str, settings: VoiceSettings, model: str) -> dict[str, object]:
    """The JSON body; the API has no pitch, and volume is applied by master()."""
    return {
        "model": model,
        "input": text,
        "voice": settings.name,
        "response_format": "wav",
        "speed": round(1.0 + settings.rate / 100, 2),
    }


class HttpSpeechEngine:
    name = "http"

    def __init__(self, url: str, model: str = "", timeout: float = 3.0, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.url = speech_url(url)
        self.model = model
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)

    async def synthesize(self, text: str, settings: VoiceSettings) -> Speech:
        if not tokenize(text):
            raise VoiceError("nothing to say")
        try:
            data = await asyncio.wait_for(self._fetch(text, settings), self.timeout)
        except VoiceError:
            raise
        except TimeoutError:
            raise VoiceError(f"speech server {self.url} took over {self.timeout:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise VoiceError(f"speech server {self.url}: {type(exc).__name__}: {exc}") from None
        raw, rate = await asyncio.to_thread(decode_audio, data)
        pcm, _ = await asyncio.to_thread(master, raw, rate, settings.volume)
        return Speech(pcm, envelope_marks(text, pcm), self.name)

    async def _fetch(self, text: str, settings: VoiceSettings) -> bytes:
        timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.connect_timeout)
        body = request_body(text, settings, self.model)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.post(self.url, json=body) as resp:
            data = await resp.read()
            if resp.status != 200:
                detail = data[:200].decode("utf-8", "replace").replace("\n", " ")
                raise VoiceError(f"speech server {self.url} answered {resp.status}: {detail}")
        if not data:
            raise VoiceError(f"speech server {self.url} sent no audio")
        return data
