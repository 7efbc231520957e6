"""Voice a whole rundown before the show, so the buyer hears about fallbacks before the audience does.

Each line walks the profile's chain itself (instead of through FailoverEngine) so the
report can say which engine spoke it and why the ones before it could not. What is
spoken lands in the same caches the live show reads, so the show then starts warm.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from avatar.voice.base import Speech, VoiceError
from avatar.voice.factory import Chain
from script_gen.builder import segment_script
from script_gen.rundown import Rundown

CONCURRENCY = 4


@dataclass(frozen=True)
class LineReport:
    text: str
    engine: str  # who spoke it
    fell_back: bool
    reasons: tuple[str, ...]  # "engine: why" for each engine that could not
    seconds: float


async def speak_line(chain: Chain, text: str) -> tuple[Speech, tuple[str, ...]]:
    """The first engine of `chain` that can speak `text`, and why the earlier ones could not."""
    reasons: list[str] = []
    for engine, settings in chain:
        try:
            return await engine.synthesize(text, settings), tuple(reasons)
        except VoiceError as exc:
            reasons.append(f"{engine.name}: {exc}")
    raise VoiceError("; ".join(reasons))


def rundown_lines(rundown: Rundown, seed: int = 0) -> list[str]:
    """Every distinct spoken line of the rundown's first pass, as a live show with `seed` scripts it."""
    lines: dict[str, None] = {}
    for k in range(len(rundown.segments)):
        lines.update((line.speech, None) for line in segment_script(rundown, k, seed).lines)
    return list(lines)


async def preflight(
    chain: Chain, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
) -> list[LineReport]:
    """Speak (and so cache) every text; `progress(done, total)` after each line."""
    gate = asyncio.Semaphore(CONCURRENCY)
    done = 0

    async def one(text: str) -> LineReport:
        nonlocal done
        async with gate:
            speech, reasons = await speak_line(chain, text)
        done += 1
        if progress is not None:
            progress(done, len(texts))
        return LineReport(text, speech.engine, speech.engine != chain[0][0].name, reasons, speech.seconds)

    return list(await asyncio.gather(*(one(t) for t in texts)))
