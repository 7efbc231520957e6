"""Running the server: `linkup serve` and `linkup demo`."""
from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import signal
import sys
from pathlib import Path

from aiohttp import web

from script_gen.rundown import load_rundown
from studio.auth import Identity
from studio.brand_api import CATALOG
from studio.catalog import seed_demo
from studio.render import DEMO_RUNDOWN
from studio.server import Config, Studio, build_app

log = logging.getLogger("linkup.serve")


def load_secret(data_dir: Path) -> bytes:
    """Tokens stay valid across restarts: the signing key lives in the data folder."""
    path = data_dir / "secret.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


def tune_gc() -> None:
    """For a server that is up: fewer, cheaper garbage collections under a claims storm.

    Start-up's objects (modules, classes, the app: ~250,000 of them) are frozen out of every
    collection, and a young collection runs after 10,000 new objects instead of 700. Each claim
    makes a handful of short-lived ones; with the defaults, collections took ~5 us a claim of
    the event loop's time (bench/claims.py), and most of what they walked was still in flight.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def serve(config: Config, host: str, port: int, *, demo: bool = False, ready: asyncio.Event | None = None) -> None:
    studio = Studio(config)
    app = build_app(studio)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    tune_gc()
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        buyer = studio.tokens.issue(Identity("buyer", "buyer-demo", "采销小李"))
        brand = studio.tokens.issue(Identity("brand", "brand-demo", "声屿官方旗舰店"))
        if demo and "demo" in studio.streams:  # --redis: another process runs the demo show; this one serves it too
            print(f"LinkUp demo (its show runs on another process): {base}/watch/demo")
        elif demo:
            rundown = load_rundown(DEMO_RUNDOWN)
            await seed_demo(app[CATALOG], "brand-demo", rundown)
            stream = await studio.add_stream(rundown, stream_id="demo", brand_id="brand-demo")
            await studio.go_live(stream)
            print(f"LinkUp demo is live: {stream.title}")
            print(f"  watch page:     {base}/watch/{stream.id}")
        print(f"  buyer console:  {base}/console?token={buyer}")
        print(f"  brand page:     {base}/brand?token={brand}")
        print(f"  API:            {base}/api/streams")
        if studio.cluster is not None:
            print(f"  scale-out:      claims, rooms and streams shared through Redis as node {studio.cluster.node}")
        print(f"  buyer token:    {buyer}")
        print(f"  brand token:    {brand}")
        print("Ctrl-C stops the server (segments are finished and sockets closed cleanly).", flush=True)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        print("stopping…", file=sys.stderr, flush=True)
        await runner.cleanup()
