"""The `linkup` command."""
from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import time
from pathlib import Path

from script_gen.commands import add_commands as add_script_commands
from script_gen.llm import LlmConfigError, add_llm_options, llm_from_args
from script_gen.rundown import RundownError, load_rundown
from studio.backend import BackendError, check_redis_url, node_name
from studio.media import RESOLUTIONS, OutputError, check_writable
from studio.voice_cli import add_commands as add_voice_commands


class CliError(Exception):
    """A bad argument found only when acting on it (a port in use, say)."""


def _render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from studio.render import RenderOptions, render_rundown

    rundown = load_rundown(args.rundown)
    out = Path(args.output)
    check_writable(out)
    options = RenderOptions(resolution=args.resolution, seed=args.seed, preset=args.preset, llm=llm_from_args(args))
    started = time.perf_counter()
    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="frame", desc="rendering", file=sys.stderr, disable=args.quiet)
        bar.update(done - bar.n)

    print(f"{rundown.title}: scripting and voicing {len(rundown.segments)} segments…", file=sys.stderr)
    show = render_rundown(rundown, out, options, progress)
    if bar is not None:
        bar.close()
    seconds = show.timeline.frames / 25
    took = time.perf_counter() - started
    print(f"wrote {out} ({seconds:.1f} s of video, {RESOLUTIONS[args.resolution][1]}p25, "
          f"voice: {', '.join(sorted(show.voices_used))}) in {took:.1f} s")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvloop  # libuv's loop: about 1.5x the websocket messages a second of asyncio's on these machines

    from studio.claims_store import StoreError
    from studio.ratelimit import ClaimLimits
    from studio.serve import load_secret, serve
    from studio.server import Config

    llm = llm_from_args(args)  # a bad --llm-url is refused before anything is written
    try:
        ClaimLimits.from_env()  # the same for a bad LINKUP_CLAIM_RATE_* / LINKUP_TRUSTED_PROXY
    except ValueError as exc:
        raise CliError(str(exc)) from None
    data = Path(args.data)
    redis_url = check_redis_url(args.redis) if args.redis else None  # a bad --redis is refused before anything starts
    config = Config(data_dir=data, voice_cache=data / "voice-cache", resolution=args.resolution, secret=load_secret(data),
                    llm=llm, redis_url=redis_url, node=node_name(args.port) if redis_url else None)
    try:
        uvloop.run(serve(config, args.host, args.port, demo=args.command == "demo"))
    except (BackendError, StoreError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        raise CliError(f"--port {args.port}: cannot listen on {args.host}:{args.port} ({exc.strerror})") from None
    return 0


def _add_render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, help="the MP4 file to write")
    p.add_argument("--resolution", choices=sorted(RESOLUTIONS), default="720p")
    p.add_argument("--seed", type=int, default=0, help="varies the generated phrasing and the host's motion")
    p.add_argument("--preset", default="veryfast", help="libx264 preset (ultrafast … slow)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_llm_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linkup", description="LinkUp: an AI digital host that sells live.")
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="render a rundown into an MP4 show, offline")
    render.add_argument("rundown", help="the rundown YAML file (see docs/rundown.md)")
    _add_render_options(render)
    render.set_defaults(run=_render)
    add_voice_commands(sub)
    add_script_commands(sub)
    for name, text in (("serve", "run the live studio server"),
                       ("demo", "run the server with the demo show live at once (offline, no account)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, default=8080)
        p.add_argument("--data", default="linkup-data", help="folder for the database, HLS and caches")
        p.add_argument("--resolution", choices=sorted(RESOLUTIONS), default="720p")
        p.add_argument("--redis", metavar="URL", default=os.environ.get("LINKUP_REDIS_URL") or None,
                       help="share claims, rooms and streams with other processes through this Redis "
                            "(redis://host:6379/0; env LINKUP_REDIS_URL; docs/scaling.md); default: embedded, SQLite only")
        add_llm_options(p)
        p.set_defaults(run=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="linkup: %(levelname)s: %(message)s")
    try:
        return args.run(args)
    except (RundownError, OutputError, CliError, LlmConfigError, BackendError) as exc:
        print(f"linkup: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("linkup: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
