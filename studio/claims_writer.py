"""The claims database's writer: a process of its own that group-commits what the server sends it.

Why a process and not a thread: a writer thread shares the server's GIL. Each time it wants the
GIL back (after a commit's fsync, after its commit delay) the event loop has to hand it over, and
then wait for it again; in bench/claims.py the loop spent about an eighth of its time in those
handovers instead of serving viewers. Here the server only writes a frame down a pipe once per loop
iteration and reads one byte back per frame.

Protocol, on the pipes the server gives it:
- in (stdin): frames, each a 4-byte big-endian length and a JSON list of `[statement, params]`
  (statement: an index into claims_sql.STATEMENTS);
- out (stdout): `=` once the database is open (its tables created), then `+` for each frame once
  it is committed and fsynced, in order. On a failed write (or a database it cannot open): `-`,
  the error, a newline, and the writer exits; what it had not acknowledged was not written.
- End of input: whatever was sent is committed and acknowledged, then it exits.

It dies with the server (PR_SET_PDEATHSIG), and holds the server's lock on the database (an
inherited file descriptor) until it is gone: a restarted server never loads the claims while a
writer of the one before could still commit.

    python -m studio.claims_writer DATABASE PARENT_PID [--unique-requests]
"""
from __future__ import annotations

import os
import select
import signal
import sqlite3
import struct
import sys
import time

import orjson

from studio.claims_sql import connect, create, write_group

# Group commit with a commit delay (PostgreSQL's commit_delay): once groups are big, the writer waits
# this long for more claims before committing. Every commit costs the same fixed work (WAL frames,
# fdatasync) whatever its size. A lone claim, after a small group, is committed at once.
COMMIT_DELAY = 0.002
COMMIT_DELAY_AFTER = 16  # rows in the previous group
READ = 1 << 20


def die_with_parent(parent: int) -> None:
    """SIGKILL when the server goes, however it goes (Linux); exit now if it is already gone."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the end of input still stops the writer
        pass
    if os.getppid() != parent:
        sys.exit(0)


def frames(buf: bytearray) -> list[bytes]:
    """Complete frames taken off the front of `buf`."""
    out, at = [], 0
    while len(buf) - at >= 4:
        (n,) = struct.unpack_from("!I", buf, at)
        if len(buf) - at - 4 < n:
            break
        out.append(bytes(buf[at + 4:at + 4 + n]))
        at += 4 + n
    del buf[:at]
    return out


def drain(fd: int, buf: bytearray) -> bool:
    """Read what is there without blocking; False at end of input."""
    while True:
        try:
            chunk = os.read(fd, READ)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        buf += chunk


def serve(db: str, unique_requests: bool, fd_in: int, fd_out: int) -> int:
    try:
        create(db, unique_requests)
        conn = connect(db)
    except sqlite3.Error as exc:
        return failed(fd_out, exc)
    os.write(fd_out, b"=")
    os.set_blocking(fd_in, False)
    buf, last, going = bytearray(), 0, True
    while going:
        select.select([fd_in], [], [])
        if last >= COMMIT_DELAY_AFTER:
            time.sleep(COMMIT_DELAY)
        going = drain(fd_in, buf)
        got = frames(buf)
        if not got:
            continue
        items = [item for frame in got for item in orjson.loads(frame)]
        last = len(items)
        try:
            write_group(conn, items)
        except sqlite3.Error as exc:
            return failed(fd_out, exc)
        os.write(fd_out, b"+" * len(got))
    conn.close()
    return 0


def failed(fd_out: int, exc: sqlite3.Error) -> int:
    os.write(fd_out, b"-" + str(exc).encode() + b"\n")
    return 1


def main() -> None:
    db, parent, unique_requests = sys.argv[1], int(sys.argv[2]), "--unique-requests" in sys.argv[3:]
    die_with_parent(parent)
    for sig in (signal.SIGINT, signal.SIGTERM):  # sent to the whole process group: the server stops it
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(serve(db, unique_requests, sys.stdin.fileno(), sys.stdout.fileno()))


if __name__ == "__main__":
    main()
