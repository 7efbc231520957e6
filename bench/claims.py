"""Durable claims a second through the real server, against a bare websocket echo in the same run.

A server process (the real app, `bench/liveserver.py`) holds one open batch. Viewer sockets
(lean raw-asyncio websocket clients, in separate processes) each claim in a loop: send a
claim with a fresh request id, wait for its answer, send the next. An answer comes only
after the claim is committed, so answers a second are durable claims a second. Then the
same clients, socket count and message size drive a bare aiohttp websocket echo: the claims
rate is stated as a share of it.

Afterwards the claims table is read back: `oversold` (grants beyond stock), `duplicates`
(a request answered twice differently, or a viewer holding more than the limit) and `lost`
(acknowledged answers missing from the table) are counted, not assumed. On Redis, where only grants
become rows and refusals are kept by the Lua script's answers hash (AOF), `lost` counts answers
missing from that hash and grants missing from the table.

Rate limits are off in the server here (LINKUP_CLAIM_RATE_*=off): this measures the claims
path, and a few hundred sockets on one address would otherwise be throttled by design.

    python bench/claims.py [--quick] [--store sqlite | --store redis --redis URL]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import secrets
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import uvloop
from liveserver import ServerProcess


def masked_text(payload: bytes) -> bytes:
    """A client's text frame, masked with a zero key: valid (RFC 6455 5.3 lets a client pick any key; a
    browser picks a random one to defeat proxy cache poisoning, no concern on loopback) and free of the
    XOR and getrandom() per message that would take the clients CPU the server needs."""
    n = len(payload)
    head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0xFE, n)
    return head + b"\0\0\0\0" + payload


class Claimer(asyncio.Protocol):
    """One viewer socket claiming in a loop (or, against the echo, sending the same message)."""

    def __init__(self, host: str, path: str, viewer: str, run: dict) -> None:
        """`run` is shared by a process's sockets: phase flags, the batch, and what was measured."""
        self.host, self.path, self.viewer, self.run = host, path, viewer, run
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = asyncio.get_running_loop().create_future()
        self.n = 0
        self.sent_at = 0.0
        self.rid = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        self.transport.write((f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())

    def send_next(self) -> None:
        if not self.run["going"] or self.transport is None or self.transport.is_closing():
            return
        self.n += 1
        self.rid = f"{self.viewer}-{self.n}"
        msg = f'{{"type":"claim","request_id":"{self.rid}","batch":"{self.run["batch"]}"}}'.encode()  # ids are plain ASCII
        self.sent_at = time.perf_counter()
        self.transport.write(masked_text(msg))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded.done():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            del self.buf[:end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(ConnectionError(head.split(b"\r\n")[0].decode()))
                return
            self.upgraded.set_result(None)
        buf = self.buf
        while len(buf) >= 2:
            b1 = buf[1] & 0x7F
            start, n = (2, b1) if b1 < 126 else ((4, struct.unpack_from("!H", buf, 2)[0]) if b1 == 126 and len(buf) >= 4
                                                  else (10, struct.unpack_from("!Q", buf, 2)[0]) if len(buf) >= 10 else (0, -1))
            if n < 0 or len(buf) < start + n:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[start:start + n])
            del buf[:start + n]
            if opcode == 0x9 and self.transport is not None:
                self.transport.write(b"\x8a\x80" + secrets.token_bytes(4))  # pong, empty payload
            elif opcode == 0x1 and self.sent_at and payload.startswith((b'{"type":"claim_result"', b'{"type":"claim"')):
                self.answered(payload)

    def answered(self, payload: bytes) -> None:
        run = self.run
        if run["measuring"]:
            run["latency"].append(time.perf_counter() - self.sent_at)
            run["count"] += 1
        if not run["echo"]:
            run["answers"].append(payload)  # parsed after the run: the clients' CPU goes to claiming
        self.sent_at = 0.0
        self.send_next()


async def clients_main(port: int, stream: str, batch: str, viewers: list[tuple[str, str]], echo: bool, warmup: float,
                       seconds: float, go_at: float, out: mp.Queue) -> None:
    loop = asyncio.get_running_loop()
    run = {"going": False, "measuring": False, "latency": [], "count": 0, "answers": [], "echo": echo,
           "batch": batch}
    socks: list[Claimer] = []
    gate = asyncio.Semaphore(100)

    async def connect(viewer: str, token: str) -> None:
        async with gate:
            _, proto = await loop.create_connection(
                lambda: Claimer(f"127.0.0.1:{port}", f"/ws/{stream}?token={token}", viewer, run), "127.0.0.1", port)
            await proto.upgraded
            socks.append(proto)

    await asyncio.gather(*(connect(v, t) for v, t in viewers))
    await asyncio.sleep(max(0.0, go_at - time.time()))
    run["going"] = True
    for s in socks:
        s.send_next()
    await asyncio.sleep(warmup)
    run["measuring"] = True
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    run["measuring"] = False
    cpu = time.process_time() - cpu0
    run["going"] = False
    await asyncio.sleep(2.0)  # answers still in flight arrive
    answers = [(a["request_id"], a["ok"], a.get("reason")) for a in map(json.loads, run["answers"])]
    out.put({"count": run["count"], "latency": run["latency"], "answers": answers, "cpu": cpu})
    for s in socks:
        if s.transport is not None:
            s.transport.close()


def clients_proc(*args: object) -> None:
    uvloop.run(clients_main(*args))  # type: ignore[arg-type]


def drive(port: int, tokens: list[tuple[str, str]], procs: int, echo: bool, warmup: float, seconds: float,
          server: ServerProcess) -> dict:
    """Run the clients against `server`; rates and CPU are taken over the measured seconds only."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    go_at = time.time() + 3.0 + len(tokens) / 500  # time to connect every socket first
    ps = [ctx.Process(target=clients_proc, args=(port, server.stream, server.batch, tokens[k::procs], echo, warmup,
                                                 seconds, go_at, out))
          for k in range(procs)]
    for p in ps:
        p.start()
    time.sleep(max(0.0, go_at + warmup - time.time()))
    cpu0, loop0, steal0 = server.cpu(), server.cpu(loop_only=True), stolen()
    time.sleep(seconds)
    server_cores, loop_cores = (server.cpu() - cpu0) / seconds, (server.cpu(loop_only=True) - loop0) / seconds
    steal = (stolen() - steal0) / seconds
    got = [out.get(timeout=go_at - time.time() + warmup + seconds + 120) for _ in ps]
    for p in ps:
        p.join(timeout=30)
    lat = sorted(x for g in got for x in g["latency"])
    return {"rate": sum(g["count"] for g in got) / seconds, "latency": lat,
            "answers": [a for g in got for a in g["answers"]], "client_cores": sum(g["cpu"] for g in got) / seconds,
            "server_cores": server_cores, "loop_cores": loop_cores, "steal": steal}


def stolen() -> float:
    """Seconds of CPU the hypervisor gave to other guests (all cores): a noisy neighbour shows here."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


def q(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p * 100) - 1] * 1000 if len(values) > 1 else float("nan")


def remembered_in_redis(url: str, viewers: list[str]) -> dict[str, tuple[bool, str | None]]:
    """The Lua script's answers for this run's viewers, by scoped request id: in Redis mode refusals are
    durable there (AOF), and only grants become rows."""
    import redis

    from studio.redis_store import ANSWERS, decode_answer

    prefixes = tuple(f"{v}:" for v in viewers)
    client = redis.Redis.from_url(url)
    try:
        found = {}
        for rid, text in client.hscan_iter(ANSWERS, count=10_000):
            rid = rid.decode()
            if rid.startswith(prefixes):
                answer = decode_answer(rid, text.decode())
                found[rid] = (answer.ok, answer.reason)
        return found
    finally:
        client.close()


def check_database(db: Path, stock: int, limit: int, answers: list[tuple[str, bool, str | None]],
                   redis_answers: dict[str, tuple[bool, str | None]] | None = None) -> dict:
    """What the table (and, on Redis, the answers hash) says against what clients were told."""
    conn = sqlite3.connect(db)
    try:
        rows = {rid: (bool(ok), reason) for rid, ok, reason in conn.execute("SELECT request_id, ok, reason FROM claims")}
        per_viewer = Counter(v for (v,) in conn.execute("SELECT viewer_id FROM claims WHERE ok = 1"))
    finally:
        conn.close()
    told: dict[str, tuple[bool, str | None]] = {}
    conflicting = 0
    for rid, ok, reason in answers:
        if rid in told and told[rid] != (ok, reason):
            conflicting += 1
        told[rid] = (ok, reason)
    granted = sum(1 for ok, _ in rows.values() if ok)
    # rows are keyed by "<viewer>:<request id>" (the server scopes request ids to their viewer)
    on_disk = {rid.split(":", 1)[1]: v for rid, v in rows.items()}
    if redis_answers is not None:  # refusals live in Redis; every grant must also be a row
        in_redis = {rid.split(":", 1)[1]: v for rid, v in redis_answers.items()}
        lost = sum(1 for rid, v in told.items() if in_redis.get(rid) != v or (v[0] and on_disk.get(rid) != v))
    else:
        lost = sum(1 for rid, v in told.items() if on_disk.get(rid) != v)
    return {"granted": granted, "rows": len(rows), "oversold": max(0, granted - stock),
            "duplicates": conflicting + sum(1 for n in per_viewer.values() if n > limit), "lost": lost,
            "acknowledged": len(told)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    ap.add_argument("--redis", help="Redis URL for --store redis")
    ap.add_argument("--sockets", type=int, default=400, help="viewer sockets claiming at once")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--quick", action="store_true", help="5 s per phase: done within a minute")
    args = ap.parse_args()
    if args.store == "redis" and not args.redis:
        ap.error("--store redis needs --redis URL")
    if args.sockets < 1 or args.seconds <= 0 or args.procs < 1:
        ap.error("--sockets and --procs must be >= 1, --seconds > 0")
    if args.quick:
        args.seconds = 5.0
    warmup = 1.0
    limit = 100  # the most a rundown allows; viewers claim fewer times than that in a run
    # half of what the viewers may hold: the batch sells out mid-run, so grants and sold_out refusals
    # (both durable rows) are measured, and overselling would show
    stock = args.sockets * limit // 2
    extra = ["--redis", args.redis] if args.store == "redis" else []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        env = {"LINKUP_CLAIM_RATE_VIEWER": "off", "LINKUP_CLAIM_RATE_ADDRESS": "off"}
        with ServerProcess(data, stock, limit, nofile=args.sockets + 500, env=env, extra=extra) as server:
            # viewer ids (and so request ids) unique to the run: a shared Redis remembers answers forever
            ids = [f"{server.stream}-v{i}" for i in range(args.sockets)]
            tokens = [(v, server.viewer_token(v, f"观众{i}")) for i, v in enumerate(ids)]
            claims = drive(server.port, tokens, args.procs, False, warmup, args.seconds, server)
            redis_answers = remembered_in_redis(args.redis, ids) if args.store == "redis" else None
        checked = check_database(data / "claims.sqlite3", stock, limit, claims["answers"], redis_answers)
        with ServerProcess(data, 0, 1, nofile=args.sockets + 500, extra=["--echo"]) as echo_server:
            echo = drive(echo_server.port, tokens, args.procs, True, warmup, args.seconds, echo_server)
    share = claims["rate"] / echo["rate"] if echo["rate"] else 0.0
    print(f"store: {args.store}; {args.sockets} sockets in {args.procs} client processes; {args.seconds:.0f} s measured")
    print(f"claims: {claims['rate']:,.0f}/s durable, p50 {q(claims['latency'], 0.5):.2f} ms, "
          f"p99 {q(claims['latency'], 0.99):.2f} ms; CPU: server and its writer {claims['server_cores']:.2f} cores "
          f"({claims['server_cores'] / max(claims['rate'], 1) * 1e6:.0f} us a claim; its event loop's thread "
          f"{claims['loop_cores']:.2f} cores, {claims['loop_cores'] / max(claims['rate'], 1) * 1e6:.0f} us), "
          f"clients {claims['client_cores']:.2f}; stolen by the hypervisor {claims['steal']:.2f} cores")
    print(f"echo:   {echo['rate']:,.0f}/s, p50 {q(echo['latency'], 0.5):.2f} ms, p99 {q(echo['latency'], 0.99):.2f} ms; "
          f"CPU: server {echo['server_cores']:.2f} cores ({echo['server_cores'] / max(echo['rate'], 1) * 1e6:.0f} us a message), "
          f"clients {echo['client_cores']:.2f}")
    print(f"claims rate = {share:.0%} of the bare echo")
    print(f"database: {checked['rows']} rows, {checked['granted']} granted of {stock}; "
          f"acknowledged {checked['acknowledged']}: oversold {checked['oversold']}, duplicates {checked['duplicates']}, "
          f"lost {checked['lost']}")
    print(json.dumps({"claims_per_s": round(claims["rate"]), "p50_ms": round(q(claims["latency"], 0.5), 2),
                      "p99_ms": round(q(claims["latency"], 0.99), 2), "oversold": checked["oversold"],
                      "duplicates": checked["duplicates"], "lost": checked["lost"], "echo_per_s": round(echo["rate"]),
                      "share_of_echo": round(share, 3), "store": args.store, "sockets": args.sockets,
                      "server_us_per_claim": round(claims["server_cores"] / max(claims["rate"], 1) * 1e6, 1),
                      "server_us_per_echo": round(echo["server_cores"] / max(echo["rate"], 1) * 1e6, 1),
                      "loop_us_per_claim": round(claims["loop_cores"] / max(claims["rate"], 1) * 1e6, 1),
                      "steal_cores": round(claims["steal"], 2),
                      "acknowledged": checked["acknowledged"], "granted": checked["granted"], "stock": stock}))


if __name__ == "__main__":
    main()
