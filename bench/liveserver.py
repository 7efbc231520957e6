"""The real LinkUp app in a process of its own, for the benchmarks.

Run as a script it serves `studio.server.build_app` (the same app `linkup serve` runs) with one
stream whose flash-sale batches are open from media time 0, as if the host had said 上链接
when the show started: the benchmarks measure claims and fan-out, not video, so no show
renders. `ServerProcess` starts it, issues tokens with its key and reads its memory.

    python bench/liveserver.py DATA_DIR STOCK PER_VIEWER_LIMIT --stream ID --batch ID [--echo | --redis URL]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Self

import uvloop

if TYPE_CHECKING:
    from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]

RUNDOWN = """
title: 压测直播
host: {{avatar: default, voice: {{engine: offline}}}}
products:
  - id: cup
    name: 暖言 保温杯
    category: 家居
    price: 99
    live_price: 59
    selling_points: [316不锈钢内胆]
    stock: 1000000
    coupon: {{amount: 5, min_spend: 50}}
segments:
  - product: cup
    script: [大家好，这款保温杯今天只要¥59！]
    flash_sale: {{batch: {batch}, stock: {stock}, per_viewer_limit: {limit}, countdown_after: 1}}
"""


class ServerProcess:
    """Starts the app in a subprocess on a free port; a context manager that kills it on exit."""

    def __init__(self, data: Path, stock: int = 500, per_viewer_limit: int = 1, nofile: int = 4096,
                 env: dict[str, str] | None = None, extra: list[str] | None = None) -> None:
        self.data, self.stock, self.limit, self.nofile = data, stock, per_viewer_limit, nofile
        tag = secrets.token_hex(3)  # a shared Redis outlives a run: each run gets its own stream and batch
        self.stream, self.batch = f"bench-{tag}", f"BENCH-{tag}"
        self.env = {**os.environ, "LINKUP_CLAIM_RATE_ADDRESS": "off", **(env or {})}
        self.extra = extra or []
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *(["-m", "cProfile", "-o", os.environ["LINKUP_BENCH_PROFILE"]]
                               if os.environ.get("LINKUP_BENCH_PROFILE") and "--echo" not in self.extra else []),
             str(Path(__file__).resolve()), str(self.data), str(self.stock), str(self.limit),
             "--stream", self.stream, "--batch", self.batch, "--nofile", str(self.nofile), *self.extra],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, env=self.env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the server did not start (exit {self.proc.wait()})")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def viewer_token(self, viewer_id: str, nickname: str) -> str:
        from studio.auth import Identity, Tokens
        from studio.serve import load_secret

        if not hasattr(self, "_tokens"):
            self._tokens = Tokens(load_secret(self.data))
        return self._tokens.issue(Identity("viewer", viewer_id, nickname))

    def cpu(self, loop_only: bool = False) -> float:
        """CPU seconds the server has used (user + system), with its running child processes (the claims
        writer); `loop_only`: its event loop's thread alone."""
        assert self.proc is not None
        pid = self.proc.pid
        if loop_only:
            return _cpu(Path(f"/proc/{pid}/task/{pid}/stat"))
        children = [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
        return _cpu(Path(f"/proc/{pid}/stat")) + sum(_cpu(Path(f"/proc/{c}/stat")) for c in children)

    def rss(self) -> int:
        """Resident memory of the server process, bytes."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")


def _cpu(stat: Path) -> float:
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # a child that has just exited
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _serve_until_signalled(runner: web.AppRunner) -> None:
    """Tell the parent the port, then serve until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from studio.serve import tune_gc

    tune_gc()  # as `linkup serve` does; the echo too, so the share compares code paths, not GC settings
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def _echo() -> None:
    """A bare aiohttp websocket echo (same server settings as the viewers' socket): the baseline."""
    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=4096, compress=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws/{stream}", echo)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    await _serve_until_signalled(runner)


async def _serve(data: Path, stock: int, limit: int, stream: str, batch: str, redis_url: str | None) -> None:
    import yaml
    from aiohttp import web

    from script_gen.rundown import parse_rundown
    from studio.serve import load_secret
    from studio.server import Config, Studio, build_app

    studio = Studio(Config(data_dir=data, voice_cache=data / "voice-cache", secret=load_secret(data), redis_url=redis_url))
    runner = web.AppRunner(build_app(studio), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    rundown = parse_rundown(yaml.safe_load(RUNDOWN.format(batch=batch, stock=stock, limit=limit)), "bench")
    await studio.add_stream(rundown, stream)
    studio.claims.cue(stream, "link_up", "cup", 0.0)  # 上链接 at media time 0: no show renders, claims carry media time 0
    await _serve_until_signalled(runner)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("stock", type=int)
    ap.add_argument("limit", type=int)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--batch", required=True)
    ap.add_argument("--echo", action="store_true", help="serve a bare websocket echo instead")
    ap.add_argument("--redis", help="claims and rooms on this Redis (default: embedded SQLite)")
    ap.add_argument("--nofile", type=int, default=4096, help="open files (sockets) this process may hold")
    args = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.nofile), hard))
    uvloop.run(_echo() if args.echo else _serve(args.data, args.stock, args.limit, args.stream, args.batch, args.redis))
