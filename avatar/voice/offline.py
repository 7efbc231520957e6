"""The offline voice: libespeak-ng speaking tone-numbered pinyin.

espeak's own Mandarin voice spells many characters out, so the text is converted
with pypinyin (which resolves polyphones from context) and spoken with the
"cmn-latn-pinyin" voice. Works without network at ~1000x real time; it is the voice
the show falls back to when the neural voice is unreachable.
"""
from __future__ import annotations

import asyncio
import ctypes
import threading
from bisect import bisect_left

import espeakng_loader
import numpy as np
from pypinyin import Style, lazy_pinyin

from avatar.voice.audio import master
from avatar.voice.base import Speech, VoiceError, VoiceSettings
from avatar.voice.text import SEGMENT, Token, build_marks, fill_missing, halfwidth
from studio.clock import SAMPLE_RATE

DEFAULT_VOICE = "cmn-latn-pinyin"
# espeak's words are pinyin syllables here: 175 a minute (~2.9 a second). Faster (230) sounds more like a
# live-commerce host but shortens the comma pauses to ~80 ms, which the lips and listeners need.
NORMAL_WPM = 175

# Pause punctuation espeak understands (full-width forms are folded to ASCII first);
# any other symbol is dropped.
_PAUSES = {
    "、": ",", "…": ",", "—": ",", "~": ",", ",": ",", ";": ",", ":": ",",
    "。": ".", ".": ".", "!": "!", "?": "?", "%": "%",
}


def _syllables(han: str) -> list[str]:
    """Tone-numbered pinyin, one entry per character ("" where pypinyin has none)."""
    out = lazy_pinyin(han, style=Style.TONE3, neutral_tone_with_five=True)
    if len(out) != len(han):  # unknown characters come back grouped
        out = [lazy_pinyin(c, style=Style.TONE3, neutral_tone_with_five=True)[0] for c in han]
    return [s if s.isascii() and s.isalnum() else "" for s in out]


def to_pinyin(text: str) -> tuple[str, list[tuple[Token, int, int]]]:
    """ASCII text for the pinyin voice, plus each token's [start, end) in it.

    A token with no pronounceable form gets an empty span (start == end).
    """
    parts: list[str] = []
    spans: list[tuple[Token, int, int]] = []
    at = 0

    def emit(s: str) -> None:
        nonlocal at
        parts.append(s + " ")
        at += len(s) + 1

    for m in SEGMENT.finditer(halfwidth(text)):
        if m.lastgroup == "han":
            for k, (c, syl) in enumerate(zip(m.group(), _syllables(m.group()))):
                spans.append((Token(m.start() + k, c, "syllable"), at, at + len(syl)))
                if syl:
                    emit(syl)
        elif m.lastgroup == "word":
            spans.append((Token(m.start(), m.group(), "word"), at, at + len(m.group())))
            emit(m.group())
        elif m.group() in _PAUSES:
            emit(_PAUSES[m.group()])
    return "".join(parts), spans


class _Espeak:
    """The process-global espeak-ng library; every use holds `lock`."""

    _EVENT_END, _EVENT_WORD = 0, 1
    _RATE, _VOLUME, _PITCH = 1, 2, 3

    class _Event(ctypes.Structure):
        _fields_ = [
            ("type", ctypes.c_int),
            ("unique_identifier", ctypes.c_uint),
            ("text_position", ctypes.c_int),
            ("length", ctypes.c_int),
            ("audio_position", ctypes.c_int),
            ("sample", ctypes.c_int),
            ("user_data", ctypes.c_void_p),
            ("id", ctypes.c_int64),
        ]

    _Callback = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
    )

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._callback = self._Callback(self._on_audio)  # must outlive every synth
        self._chunks: list[np.ndarray] = []
        self._words: list[tuple[int, int]] = []  # (0-based char offset, sample)
        self.rate = 0

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != self._EVENT_END:
            if events[i].type == self._EVENT_WORD:
                self._words.append((events[i].text_position - 1, events[i].sample))
            i += 1
        return 0

    def _load(self) -> ctypes.CDLL:
        if self._lib is None:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path().encode()
            rate = lib.espeak_Initialize(2, 0, data, 0x8000)  # SYNCHRONOUS, DONT_EXIT
            if rate <= 0:
                raise VoiceError("espeak-ng failed to initialise")
            lib.espeak_SetSynthCallback(self._callback)
            self._lib, self.rate = lib, rate
        return self._lib

    def speak(
        self, phrase: str, voice: str, settings: VoiceSettings
    ) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Blocking synth of ASCII `phrase`: (int16 pcm at self.rate, word events)."""
        with self.lock:
            lib = self._load()
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise VoiceError(f"espeak-ng has no voice {voice!r}")
            lib.espeak_SetParameter(self._RATE, round(NORMAL_WPM * (1 + settings.rate / 100)), 0)
            lib.espeak_SetParameter(self._PITCH, min(100, max(0, 50 + settings.pitch // 2)), 0)
            lib.espeak_SetParameter(self._VOLUME, 100, 0)  # loudness is set in master()
            self._chunks, self._words = [], []
            data = phrase.encode()
            if lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 1, None, None) != 0:
                raise VoiceError("espeak-ng refused the text")
            lib.espeak_Synchronize()
            pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            return pcm, self._words


_ESPEAK = _Espeak()


def _word_samples(
    spans: list[tuple[Token, int, int]], words: list[tuple[int, int]]
) -> list[int | None]:
    """First espeak WORD event inside each token's span (None where espeak gave none)."""
    ends = [end for _, _, end in spans]
    found: list[int | None] = [None] * len(spans)
    for offset, sample in words:
        i = bisect_left(ends, offset + 1)  # first span ending after `offset`
        while i < len(spans) and spans[i][1] == spans[i][2]:
            i += 1  # unpronounceable tokens never get events
        if i < len(spans) and spans[i][1] - 1 <= offset and found[i] is None:
            found[i] = sample
    return found


class OfflineEngine:
    """Speaks with espeak-ng; `settings.name` picks an espeak voice ("" = pinyin Mandarin)."""

    name = "offline"

    async def synthesize(self, text: str, settings: VoiceSettings) -> Speech:
        phrase, spans = to_pinyin(text)
        if not spans:
            raise VoiceError("nothing to say")
        return await asyncio.to_thread(self._speak, phrase, spans, settings)

    def _speak(
        self, phrase: str, spans: list[tuple[Token, int, int]], settings: VoiceSettings
    ) -> Speech:
        raw, words = _ESPEAK.speak(phrase, settings.name or DEFAULT_VOICE, settings)
        if raw.size == 0:
            raise VoiceError("espeak-ng produced no audio")
        pcm, cut = master(raw, _ESPEAK.rate, settings.volume)
        scale = SAMPLE_RATE / _ESPEAK.rate
        at_rate = fill_missing(_word_samples(spans, words), raw.size)
        samples = [round(s * scale) - cut for s in at_rate]
        return Speech(pcm, build_marks([t for t, _, _ in spans], samples, pcm.size), self.name)
