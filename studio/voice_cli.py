"""`linkup say` and `linkup voices`: hear a voice (or a brand's profile) without running a show."""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from avatar.voice.atomic import write_atomic
from avatar.voice.base import VoiceError
from avatar.voice.edge import DEFAULT_VOICE as EDGE_DEFAULT
from avatar.voice.factory import voice_chain
from avatar.voice.offline import DEFAULT_VOICE as OFFLINE_DEFAULT
from avatar.voice.preflight import speak_line
from avatar.voice.profile import (
    ENGINES,
    ProfileError,
    VoiceProfile,
    load_profile,
    parse_profile,
    profile_fields,
)
from avatar.voice.uploads import wav_bytes

EDGE_VOICES = (
    "zh-CN-XiaoxiaoNeural", "zh-CN-XiaoyiNeural", "zh-CN-YunxiNeural",
    "zh-CN-YunjianNeural", "zh-CN-YunyangNeural", "zh-CN-liaoning-XiaobeiNeural",
)


def _error(message: str) -> int:
    print(f"linkup: error: {message}", file=sys.stderr)
    return 2


def _profile(args: argparse.Namespace) -> VoiceProfile:
    """The profile file (if any) with --engine/--voice on top, checked as a whole."""
    profile = load_profile(Path(args.profile)) if args.profile else VoiceProfile()
    fields = profile_fields(profile)
    if args.engine:
        fields["engine"] = args.engine
        if args.engine == "edge" and profile.fallback == "edge":
            fields["fallback"] = "offline"
    if args.voice is not None:
        fields["name"] = args.voice
    return parse_profile(fields, args.profile or "command line")


def _say(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.is_dir() or not (out.parent if str(out.parent) else Path(".")).is_dir():
        return _error(f"{out}: not a file in an existing folder")
    try:
        profile = _profile(args)
        chain = voice_chain(profile, edge_proxy=args.proxy)
        speech, reasons = asyncio.run(speak_line(chain, args.text))
    except (ProfileError, VoiceError) as exc:
        return _error(str(exc))
    if speech.engine != profile.engine:
        print(f"linkup: warning: the {profile.engine} voice could not speak ({'; '.join(reasons)}); "
              f"used the {speech.engine} voice", file=sys.stderr)
    write_atomic(out, wav_bytes(speech.pcm))
    print(f"wrote {out} ({speech.seconds:.1f} s, {speech.engine} voice)")
    return 0


def _voices(args: argparse.Namespace) -> int:
    print(f"offline   espeak-ng, no network; default {OFFLINE_DEFAULT} (Mandarin from pinyin)")
    print(f"edge      Microsoft Edge neural TTS, needs network; default {EDGE_DEFAULT}; e.g.:")
    for name in EDGE_VOICES:
        print(f"            {name}")
    print("http      your OpenAI-compatible speech server: url, model and voice name in a --profile")
    print("recorded  your uploaded recordings of exact lines (folder in a --profile); others fall back")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Adds `say` and `voices` to the `linkup` subcommands."""
    say = sub.add_parser("say", help="speak one line into a WAV file")
    say.add_argument("text", help="what to say")
    say.add_argument("-o", "--output", required=True, help="the WAV file to write")
    say.add_argument("--engine", choices=ENGINES, help="overrides the profile's engine (default offline)")
    say.add_argument("--voice", help="the engine's voice name (see `linkup voices`)")
    say.add_argument("--profile", help="a voice profile YAML/JSON file (see docs/voices.md)")
    say.add_argument("--proxy", help="HTTP proxy for the edge voice")
    say.set_defaults(run=_say)
    voices = sub.add_parser("voices", help="list the voice engines and voices")
    voices.set_defaults(run=_voices)
