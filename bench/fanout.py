"""Fan-out: N viewer sockets in one room of the real server process, R comments a second.

Prints how long a comment takes from being sent to arriving at the viewers (p50/p99, timed on
every 20th socket, so sampled across the whole room), the server's memory per socket (RSS
growth / sockets) and the CPU each side used. Last line: one JSON object.

The viewers are lean clients in separate processes: plain non-blocking sockets and a minimal
RFC 6455 frame reader (pings answered, comments counted, sampled sockets timed), so the load
generator costs as little as it can and the server is what is measured. A real viewer reads only
its own socket, so a client process reads its timed sockets the moment they are readable and
drains the others every SWEEP seconds (their frames wait in the kernel's socket buffers, not in
the server): reading every frame of 10,000 sockets as it comes took this machine's second core
from the server. One more process holds the commenters, so comments leave on time. All share
this machine's cores.

    python bench/fanout.py                   # 10,000 viewers, 50 comments/s, 20 s
    python bench/fanout.py --viewers 2000 --seconds 10
"""
from __future__ import annotations

import argparse
import base64
import json
import multiprocessing as mp
import os
import re
import resource
import secrets
import select
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from liveserver import ServerProcess

SAMPLE_EVERY = 20  # every 20th socket times each comment it receives
SWEEP = 0.25  # seconds between reads of the sockets that are not timed
STAMP = re.compile(rb'"text":"t(\d+\.\d+)"')


def raise_nofile(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < n:
        raise SystemExit(f"fanout: need {n} file descriptors, the hard limit is {hard} (raise ulimit -n)")


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask)."""
    key = secrets.token_bytes(4)
    n = len(payload)
    head = struct.pack("!BB", 0x80 | opcode, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return head + key + ((int.from_bytes(payload, "big") ^ k).to_bytes(n, "big") if n else b"")


def handshake(port: int, stream: str, token: str) -> socket.socket:
    """Open one viewer socket (blocking), then hand it over non-blocking."""
    for attempt in range(5):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            break
        except OSError:
            time.sleep(0.2 * (attempt + 1))
    else:
        raise ConnectionError("could not connect")
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    sock.sendall((f"GET /ws/{stream}?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n")[0].decode())
    sock.setblocking(False)
    return sock


class Reader:
    """Frames of one socket; what the room sends is counted, and timed when sampled."""

    __slots__ = ("buf", "closed", "sampled", "sock")

    def __init__(self, sock: socket.socket, sampled: bool) -> None:
        self.sock, self.sampled, self.closed = sock, sampled, None
        self.buf = b""

    def feed(self, data: bytes, now: float, stats: dict) -> None:
        buf = self.buf + data if self.buf else data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b1 = buf[pos + 1] & 0x7F
            if b1 < 126:
                start, n = pos + 2, b1
            elif b1 == 126:
                if end - pos < 4:
                    break
                start, n = pos + 4, struct.unpack_from("!H", buf, pos + 2)[0]
            else:
                if end - pos < 10:
                    break
                start, n = pos + 10, struct.unpack_from("!Q", buf, pos + 2)[0]
            if end < start + n:
                break
            opcode = buf[pos] & 0x0F
            if opcode == 0x1:
                if self.sampled and buf.startswith(b'{"type":"comments"', start):
                    stamps = STAMP.findall(buf, start, start + n)
                    stats["latency"].extend(now - float(s) for s in stamps)
            elif opcode == 0x9:  # ping: answer with the same payload
                self.sock.send(masked(0xA, buf[start:start + n]))
            elif opcode == 0x8:
                self.closed = struct.unpack_from("!H", buf, start)[0] if n >= 2 else 1005
            pos = start + n
        self.buf = buf[pos:]


def viewers_proc(port: int, stream: str, tokens: list[tuple[int, str]], commenters: int, rate: float, go_file: str,
                 seconds: float, ready: mp.Queue, results: mp.Queue) -> None:
    """Connect every viewer, report, wait for the go time (written to `go_file`), then listen (and talk)."""
    raise_nofile(len(tokens) + 100)
    readers = {}
    timed_ep, rest_ep = select.epoll(), select.epoll()
    for i, token in tokens:
        r = Reader(handshake(port, stream, token), i % SAMPLE_EVERY == 0)
        readers[r.sock.fileno()] = r
        (timed_ep if r.sampled else rest_ep).register(r.sock.fileno(), select.EPOLLIN)
    ready.put(len(readers))
    go = Path(go_file)
    while not go.exists() or not go.read_text():
        time.sleep(0.05)
    go_at = float(go.read_text())
    stats: dict = {"latency": []}
    talkers = list(readers.values())[:commenters]
    sent, start = 0, max(go_at, time.time())
    cpu0 = time.process_time()
    warm = True  # what arrives before the go time (hello, counts) is not timed
    stop = start + seconds + 1.0  # the last batches arrive
    swept = 0.0
    while True:
        now = time.time()
        if now >= stop:
            break
        if warm and now >= go_at:
            warm = False
            stats["latency"].clear()
        wait = min(stop, swept + SWEEP) - now
        if talkers and rate > 0 and now < start + seconds:
            due = start + sent / rate
            if now >= due:
                talkers[sent % len(talkers)].sock.send(
                    masked(0x1, json.dumps({"type": "comment", "text": f"t{time.time():.6f}"}).encode()))
                sent += 1
                continue
            wait = min(wait, due - now)
        # timed sockets are read the moment they are readable, as a viewer reads its own socket; the
        # others are drained in a sweep every SWEEP seconds (their data waits in the kernel's buffers,
        # as it would in a viewer's): a read per frame on every socket would take the cores the server
        # is measured on
        drain(readers, timed_ep, max(0.0, wait), stats)
        if time.time() - swept >= SWEEP:
            swept = time.time()
            drain(readers, rest_ep, 0, stats)
    cpu = time.process_time() - cpu0
    lat = stats["latency"]
    step = max(1, len(lat) // 200_000)
    results.put({"sent": sent, "latency": lat[::step], "timed": len(lat), "cpu_s": cpu,
                 "closed": [r.closed for r in readers.values() if r.closed],
                 "sampled_sockets": sum(1 for r in readers.values() if r.sampled)})
    for r in readers.values():
        r.sock.close()


def drain(readers: dict[int, Reader], ep: select.epoll, timeout: float, stats: dict) -> None:
    """Read every socket of `ep` that is readable within `timeout`."""
    for fd, _ in ep.poll(timeout):
        r = readers[fd]
        try:
            data = r.sock.recv(1 << 20)
        except BlockingIOError:
            continue
        if not data:
            ep.unregister(fd)
            r.closed = r.closed or 1006
            continue
        r.feed(data, time.time(), stats)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--viewers", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=50.0, help="comments a second in the room")
    ap.add_argument("--seconds", type=float, default=20.0, help="how long comments are sent")
    ap.add_argument("--procs", type=int, default=2, help="viewer client processes (plus one for the commenters)")
    ap.add_argument("--quick", action="store_true", help="2,000 viewers for 8 s")
    args = ap.parse_args()
    if args.quick:
        args.viewers, args.seconds = min(args.viewers, 2000), 8.0
    if args.viewers < 1 or args.rate < 0 or args.procs < 1 or args.seconds <= 0:
        ap.error("--viewers and --procs must be >= 1, --rate >= 0, --seconds > 0")
    raise_nofile(args.viewers + 200)
    commenters = max(1, min(args.viewers, int(args.rate * 4)))  # each speaks every ~4 s: within the comment limit
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp) / "data", nofile=args.viewers + 200) as server:
        rss0 = server.rss()
        tokens = [(i, server.viewer_token(f"v{i}", f"观众{i}")) for i in range(args.viewers)]
        ctx = mp.get_context("spawn")
        ready, results = ctx.Queue(), ctx.Queue()
        # the commenters get a process of their own, so comments leave on time whatever the viewers' load
        rest = tokens[commenters:]
        share = [tokens[:commenters]] + [rest[k::args.procs] for k in range(args.procs)]
        talk = [commenters] + [0] * args.procs
        go_file = Path(tmp) / "go"
        started = time.time()
        procs = [ctx.Process(target=viewers_proc, args=(server.port, server.stream, share[k], talk[k], args.rate, str(go_file),
                                                         args.seconds, ready, results)) for k in range(len(share))]
        for p in procs:
            p.start()
        connected = sum(ready.get(timeout=600) for _ in procs)
        connect_s = time.time() - started
        go_at = time.time() + 2.0
        go_file.write_text(str(go_at))
        time.sleep(2.0)
        cpu0 = server.cpu()
        time.sleep(args.seconds / 2)
        rss1 = server.rss()
        time.sleep(args.seconds / 2)
        server_cpu = (server.cpu() - cpu0) / args.seconds
        got = [results.get(timeout=args.seconds + 120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
    lat = [x for g in got for x in g["latency"]]
    sent = sum(g["sent"] for g in got)
    sampled = sum(g["sampled_sockets"] for g in got)
    expected = sent * sampled
    timed = sum(g["timed"] for g in got)
    client_cpu = sum(g["cpu_s"] for g in got) / (args.seconds + 1)
    closed = [c for g in got for c in g["closed"]]
    per_socket_kib = (rss1 - rss0) / max(1, connected) / 1024
    p50, p99 = quantile(lat, 0.5) * 1000, quantile(lat, 0.99) * 1000
    print(f"viewers connected: {connected} in {connect_s:.1f} s ({args.procs} viewer processes + 1 for the commenters)")
    print(f"comments sent: {sent} ({sent / args.seconds:.1f}/s); timed deliveries: {timed} of {expected} expected "
          f"on {sampled} sampled sockets")
    print(f"CPU: server {server_cpu:.2f} cores, viewer clients {client_cpu:.2f} cores (machine: {os.cpu_count()})")
    print(f"delivery latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(lat, default=0) * 1000:.1f} ms")
    print(f"server RSS: {rss0 / 2**20:.1f} MiB before, {rss1 / 2**20:.1f} MiB with sockets -> {per_socket_kib:.1f} KiB per socket")
    print(f"sockets closed by the server: {len(closed)} {sorted(set(closed))}")
    print(json.dumps({"viewers": connected, "comments_per_s": round(sent / args.seconds, 1),
                      "p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "kib_per_socket": round(per_socket_kib, 1),
                      "delivered_share": round(timed / expected, 4) if expected else None,
                      "server_cores": round(server_cpu, 2), "client_cores": round(client_cpu, 2),
                      "closed": len(closed), "connect_s": round(connect_s, 1)}))


if __name__ == "__main__":
    main()
