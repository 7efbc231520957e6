"""A real OpenAI-compatible speech server for the voice tests, and the audio helpers they share."""
from __future__ import annotations

import asyncio
import io
import threading

import av
import numpy as np
from aiohttp import web

from avatar.voice.text import tokenize
from studio.clock import SAMPLE_RATE

TONE_HZ = 220
SERVER_RATE = 24_000


def tone_bursts(syllables: int, rate: int = SERVER_RATE, tone_ms: int = 150, gap_ms: int = 50) -> np.ndarray:
    """What the test server 'says': tone_ms of 220 Hz then gap_ms of silence per syllable."""
    t = np.arange(rate * tone_ms // 1000) / rate
    burst = np.concatenate([np.sin(2 * np.pi * TONE_HZ * t) * 6000, np.zeros(rate * gap_ms // 1000)])
    return np.tile(burst, syllables).astype(np.int16)


def wav(pcm: np.ndarray, rate: int, layout: str = "mono") -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout=layout)
        data = pcm[None, :] if layout == "mono" else np.repeat(pcm[None, :], 2, axis=0).T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="s16", layout=layout)
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buf.getvalue()


def dominant_hz(pcm: np.ndarray) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(pcm.astype(np.float64))))) * SAMPLE_RATE / pcm.size


class SpeechServer:
    """An OpenAI-compatible /v1/audio/speech server on 127.0.0.1:0, in its own thread and loop.

    It speaks tone bursts, one per syllable. Lines containing 坏 answer 500; lines containing 慢
    hang until the server stops. `stop` kills it (a voice server dying mid-show).
    """

    def __init__(self, tone_ms: int = 150, gap_ms: int = 50) -> None:
        self.tone_ms, self.gap_ms = tone_ms, gap_ms
        self.requests: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = self._call(self._start())
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        self.running = True

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _start(self) -> web.AppRunner:
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/audio/speech", self._speech)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    async def _speech(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if "坏" in body["input"]:
            return web.Response(status=500, text="model crashed")
        if "慢" in body["input"]:
            await self.release.wait()
        pcm = tone_bursts(len(tokenize(body["input"])), tone_ms=self.tone_ms, gap_ms=self.gap_ms)
        return web.Response(body=wav(pcm, SERVER_RATE), content_type="audio/wav")

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False

        async def shutdown() -> None:
            self.release.set()
            await self.runner.cleanup()

        self._call(shutdown())

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
