"""Makes flash-sale decisions durable, with group commit.

A claim is answered only once its row is on disk. One fsync per claim would
cap a flash sale at a few hundred claims a second, so one writer thread takes
everything queued, writes it in one transaction and commits once; all those
claims are then answered together. The event loop never touches the disk
while serving: it only queues rows and awaits futures.

Durability: WAL with synchronous=FULL, so a commit is fsynced before it is
acknowledged and survives power loss, not only a killed process (NORMAL
would survive kill -9 but may drop the last commits on power loss). Group
commit makes the extra fsync cheap.
"""
from __future__ import annotations

import asyncio
import functools
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from studio.deals import Batch, ClaimRequest, ClaimResult, Deals

MAX_GROUP = 1000  # rows per transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    stock INTEGER NOT NULL,
    per_viewer_limit INTEGER NOT NULL,
    coupon TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    request_id TEXT PRIMARY KEY,
    viewer_id TEXT NOT NULL,
    batch TEXT NOT NULL,
    ok INTEGER NOT NULL,
    reason TEXT,
    coupon TEXT,
    left_after INTEGER NOT NULL,
    media_time REAL NOT NULL,
    created_at REAL NOT NULL
);
"""

_SAVE_BATCH = """
INSERT INTO batches (batch, stream_id, product_id, stock, per_viewer_limit, coupon) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (batch) DO UPDATE SET stream_id = excluded.stream_id, product_id = excluded.product_id,
    stock = excluded.stock, per_viewer_limit = excluded.per_viewer_limit, coupon = excluded.coupon
"""

# A retry re-commits its remembered answer; IGNORE keeps the first row.
_SAVE_CLAIM = """
INSERT OR IGNORE INTO claims (request_id, viewer_id, batch, ok, reason, coupon, left_after, media_time, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_INSERT_CLAIMS = _SAVE_CLAIM.strip().rsplit("VALUES", 1)[0] + "VALUES "
_CLAIM_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
# 9,216 parameters at most: under SQLite's limit of 32,766, and a whole group is one statement
ROWS_PER_INSERT = 1024
assert MAX_GROUP <= ROWS_PER_INSERT

_STOP = object()


class StoreFailed(RuntimeError):
    """A write failed: memory may now be ahead of disk, so the store takes no more writes."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


class ClaimsStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        conn = _connect(path)
        try:
            conn.executescript(_SCHEMA)
        finally:
            conn.close()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._write_loop, name="claims-writer", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Writes everything already queued, then stops the writer."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(thread.join)

    def load(self, deals: Deals) -> None:
        """Restore every batch and every final answer; call at start-up, before serving claims."""
        conn = _connect(self._path)
        try:
            for row in conn.execute("SELECT batch, stream_id, product_id, stock, per_viewer_limit, coupon FROM batches"):
                deals.add_batch(Batch(*row))
            granted: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            answered: dict[str, dict[str, ClaimResult]] = defaultdict(dict)
            rows = conn.execute("SELECT request_id, viewer_id, batch, ok, reason, coupon, left_after FROM claims")
            for request_id, viewer_id, batch, ok, reason, coupon, left in rows:
                answered[batch][request_id] = ClaimResult(request_id, bool(ok), reason, coupon, left)
                if ok:
                    granted[batch][viewer_id] += 1
            for batch, answers in answered.items():
                deals.restore(batch, dict(granted[batch]), answers)
        finally:
            conn.close()

    async def save_batch(self, b: Batch) -> None:
        await self._write(_SAVE_BATCH, (b.batch, b.stream_id, b.product_id, b.stock, b.per_viewer_limit, b.coupon))

    async def commit(self, req: ClaimRequest, result: ClaimResult) -> None:
        """Resolves only after the row is durable (and every row queued before it)."""
        if result.reason == "not_open":
            raise ValueError("not_open answers are not final; there is nothing to store")
        await self._write(_SAVE_CLAIM, (
            req.request_id, req.viewer_id, req.batch, int(result.ok), result.reason, result.coupon,
            result.left, req.media_time, time.time(),
        ))

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        if self._failed is not None:
            raise StoreFailed("an earlier write failed") from self._failed
        if self._thread is None or self._loop is None:
            raise RuntimeError("ClaimsStore is not started")
        future = self._loop.create_future()
        self._queue.put((sql, params, future))
        await future

    def _write_loop(self) -> None:
        conn = _connect(self._path)
        try:
            stop = False
            while not stop:
                group = [self._queue.get()]
                while len(group) < MAX_GROUP:
                    try:
                        group.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(item is _STOP for item in group)
                items = [item for item in group if item is not _STOP]
                if items:
                    self._write_group(conn, items)
        finally:
            conn.close()

    def _write_group(self, conn: sqlite3.Connection, items: list[tuple[str, tuple[Any, ...], asyncio.Future[None]]]) -> None:
        error = self._failed
        if error is None:
            try:
                runs = _runs(items)
                if len(runs) == 1 and runs[0][0] is _SAVE_CLAIM:
                    # one statement is its own transaction (autocommit), as atomic and durable as
                    # BEGIN ... COMMIT, and the GIL is won back once per group instead of three times
                    _execute_rows(conn, _SAVE_CLAIM, runs[0][1])
                else:
                    conn.execute("BEGIN IMMEDIATE")
                    for sql, rows in runs:
                        _execute_rows(conn, sql, rows)
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._failed = error = exc
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_settle, [future for _, _, future in items], error)


def _execute_rows(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Claims go in as multi-row INSERTs: a whole group in one statement.

    sqlite3 lets go of the GIL for every statement step; each time it must win it back from a
    busy event loop, which can take a switch interval (5 ms). Row by row, a group of 1,000
    claims would wait seconds for the GIL; in one statement it waits once.

    The row count is padded up to a power of two by repeating the last row (INSERT OR IGNORE
    keeps its first copy), so only eleven statement texts exist and sqlite3's statement cache
    reuses them instead of compiling a new one for every group size.
    """
    if sql is not _SAVE_CLAIM:
        conn.executemany(sql, rows)
        return
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        size = 1 << (len(chunk) - 1).bit_length()
        params = [v for row in chunk for v in row]
        params.extend(chunk[-1] * (size - len(chunk)))
        conn.execute(_insert_claims(size), params)


@functools.cache
def _insert_claims(rows: int) -> str:
    return _INSERT_CLAIMS + ",".join([_CLAIM_VALUES] * rows)


def _runs(items: list[tuple[str, tuple[Any, ...], Any]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Consecutive items with the same SQL, in order."""
    runs: list[tuple[str, list[tuple[Any, ...]]]] = []
    for sql, params, _ in items:
        if runs and runs[-1][0] is sql:
            runs[-1][1].append(params)
        else:
            runs.append((sql, [params]))
    return runs


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():  # its awaiting task was cancelled
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(StoreFailed(str(error)))


async def claim(deals: Deals, store: ClaimsStore, req: ClaimRequest) -> ClaimResult:
    """Decide on the loop, then answer once the decision is durable.

    A retry of a request still being written gets the remembered answer, but
    only after its own (ignored) row commits: rows commit in queue order, so
    by then the first row is durable too. `not_open` binds nothing and is
    answered at once.
    """
    result = deals.decide(req)
    if result.reason != "not_open":
        await store.commit(req, result)
    return result
