"""Makes flash-sale decisions durable, with group commit.

A claim is answered only once its row is on disk. One fsync per claim would
cap a flash sale at a few hundred claims a second, so one writer thread takes
everything queued, writes it in one transaction and commits once; all those
claims are then answered together. The event loop never touches the disk
while serving: it only queues rows, and the writer hands each group's
callbacks back to the loop in one call (no future or task per claim).

Durability: WAL with synchronous=FULL, so a commit is fsynced before it is
acknowledged and survives power loss, not only a killed process (NORMAL
would survive kill -9 but may drop the last commits on power loss). Group
commit makes the extra fsync cheap.

The claims table is append-only, with no index on request_id: a unique index
takes a random B-tree insert per row (scattered pages into the WAL on every
commit) and cost here twice as much CPU as the row itself. The rows are
unique without it: Deals remembers every final answer, and a retry writes no
second row, it only waits until what was queued before it is durable
(`after_queued`). The Redis order consumer, which replays stream entries
after a crash, asks for the index (`unique_requests=True`) and relies on
INSERT OR IGNORE.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.deals import Batch, ClaimRequest, ClaimResult, Deals

log = logging.getLogger(__name__)

MAX_GROUP = 1000  # rows per transaction
# Group commit with a commit delay (PostgreSQL's commit_delay): once groups are big, the writer waits
# this long for more claims before committing. Every commit costs the same fixed work (WAL frames,
# fdatasync) whatever its size: in bench/claims.py the writer's CPU per claim fell from about 20 us
# to 14 us. A lone claim, after a small group, is committed at once.
COMMIT_DELAY = 0.002
COMMIT_DELAY_AFTER = 16  # rows in the previous group

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
    request_id TEXT NOT NULL,
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

_UNIQUE_REQUESTS = "CREATE UNIQUE INDEX IF NOT EXISTS claims_request_id ON claims (request_id);"

_SAVE_BATCH = """
INSERT INTO batches (batch, stream_id, product_id, stock, per_viewer_limit, coupon) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (batch) DO UPDATE SET stream_id = excluded.stream_id, product_id = excluded.product_id,
    stock = excluded.stock, per_viewer_limit = excluded.per_viewer_limit, coupon = excluded.coupon
"""

_CLAIM_COLUMNS = "request_id, viewer_id, batch, ok, reason, coupon, left_after, media_time, created_at"
_CLAIM_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
_CLAIM_WIDTH = 9
# IGNORE: with the unique index (Redis mode), a replayed order keeps its first row
_SAVE_CLAIM = f"INSERT OR IGNORE INTO claims ({_CLAIM_COLUMNS}) VALUES {_CLAIM_VALUES}"
# 9,216 parameters at most: under SQLite's limit of 32,766, and a whole group is one statement
ROWS_PER_INSERT = 1024
assert MAX_GROUP <= ROWS_PER_INSERT

_STOP = object()


class ClaimsUnavailable(RuntimeError):
    """The claim could not be decided or made durable (Redis unreachable, the database failing).

    Nothing was acknowledged; a retry with the same request id gets the claim's one answer.
    """

    def __init__(self, cause: BaseException | str) -> None:
        super().__init__(f"claims are unavailable right now ({cause}); try again")


class StoreFailed(ClaimsUnavailable):
    """A write failed: memory may now be ahead of disk, so the store takes no more writes."""


# Run on the loop with an item's value once it is durable, or with the StoreFailed that kept it from disk.
# The value rides in the queue beside its callback, so a claim needs no partial or closure to be answered.
Done = Callable[[Any], None]
_Item = tuple[str | None, tuple[Any, ...], Done, Any]  # (SQL or None for a barrier, its parameters, done, value)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


class ClaimsStore:
    def __init__(self, path: Path, unique_requests: bool = False) -> None:
        """`unique_requests`: for a writer that may write the same request twice (a replay)."""
        self._path = path
        conn = _connect(path)
        try:
            conn.executescript(_SCHEMA + (_UNIQUE_REQUESTS if unique_requests else ""))
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
        await self._wait(functools.partial(
            self._put, _SAVE_BATCH, (b.batch, b.stream_id, b.product_id, b.stock, b.per_viewer_limit, b.coupon)))

    async def commit(self, req: ClaimRequest, result: ClaimResult) -> None:
        """Resolves only after the row is durable (and every row queued before it)."""
        await self._wait(functools.partial(self.save_claim, req, result))

    def save_claim(self, req: ClaimRequest, result: ClaimResult, done: Done) -> None:
        """Queue the claim's row; `done(result)` runs on the loop once it is durable."""
        if result.reason == "not_open":
            raise ValueError("not_open answers are not final; there is nothing to store")
        self._put(_SAVE_CLAIM, (req.request_id, req.viewer_id, req.batch, int(result.ok), result.reason,
                                result.coupon, result.left, req.media_time, time.time()), done, result)

    def after_queued(self, done: Done, value: Any = None) -> None:
        """`done(value)` runs once everything queued so far is durable; writes nothing itself."""
        self._put(None, (), done, value)

    async def _wait(self, put: Callable[[Done], None]) -> None:
        if self._loop is None:
            raise RuntimeError("ClaimsStore is not started")
        future = self._loop.create_future()
        put(functools.partial(_resolve, future))
        await future

    def _put(self, sql: str | None, params: tuple[Any, ...], done: Done, value: Any = None) -> None:
        if self._failed is not None:
            raise StoreFailed("an earlier write failed") from self._failed
        if self._thread is None:
            raise RuntimeError("ClaimsStore is not started")
        self._queue.put((sql, params, done, value))

    def _write_loop(self) -> None:
        conn = _connect(self._path)
        try:
            stop, last = False, 0
            while not stop:
                group = [self._queue.get()]
                if last >= COMMIT_DELAY_AFTER:
                    time.sleep(COMMIT_DELAY)
                while len(group) < MAX_GROUP:
                    try:
                        group.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(item is _STOP for item in group)
                items = [item for item in group if item is not _STOP]
                last = len(items)
                if items:
                    self._write_group(conn, items)
        finally:
            conn.close()

    def _write_group(self, conn: sqlite3.Connection, items: list[_Item]) -> None:
        error = self._failed
        if error is None:
            try:
                runs = _runs(items)
                if len(runs) == 1 and runs[0][0] is _SAVE_CLAIM:
                    # one statement is its own transaction (autocommit), as atomic and durable as
                    # BEGIN ... COMMIT, and the GIL is won back once per group instead of three times
                    _execute_rows(conn, _SAVE_CLAIM, runs[0][1])
                elif runs:
                    conn.execute("BEGIN IMMEDIATE")
                    for sql, rows in runs:
                        _execute_rows(conn, sql, rows)
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._failed = error = exc
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_settle, items, error)


def _execute_rows(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Claims go in as multi-row INSERTs: a whole group in one statement.

    sqlite3 lets go of the GIL for every statement step; each time it must win it back from a
    busy event loop, which can take a switch interval (5 ms). Row by row, a group of 1,000
    claims would wait seconds for the GIL; in one statement it waits once.

    The row count is padded up to a power of two with rows of NULLs that the statement skips,
    so only eleven statement texts exist and sqlite3's statement cache reuses them instead of
    compiling a new one for every group size.
    """
    if sql is not _SAVE_CLAIM:
        conn.executemany(sql, rows)
        return
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start:start + ROWS_PER_INSERT]
        size = 1 << (len(chunk) - 1).bit_length()
        params = list(itertools.chain.from_iterable(chunk))  # held under the GIL: C-level, not a comprehension
        params.extend([None] * (_CLAIM_WIDTH * (size - len(chunk))))
        conn.execute(_insert_claims(size), params)


@functools.cache
def _insert_claims(rows: int) -> str:
    values = ",".join([_CLAIM_VALUES] * rows)
    # request_id is NOT NULL in every real row: the NULL rows are the padding
    return f"INSERT OR IGNORE INTO claims ({_CLAIM_COLUMNS}) SELECT * FROM (VALUES {values}) WHERE column1 IS NOT NULL"


def _runs(items: list[_Item]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Consecutive items with the same SQL, in order; barriers (no SQL) write nothing."""
    runs: list[tuple[str, list[tuple[Any, ...]]]] = []
    for sql, params, _, _ in items:
        if sql is None:
            continue
        if runs and runs[-1][0] is sql:
            runs[-1][1].append(params)
        else:
            runs.append((sql, [params]))
    return runs


def _settle(items: list[_Item], error: BaseException | None) -> None:
    failed = None if error is None else StoreFailed(error)
    for _, _, done, value in items:
        try:
            done(value if failed is None else failed)
        except Exception:  # one claimer's answer going wrong must not keep the others from theirs
            log.exception("answering a committed claim failed")


def _resolve(future: asyncio.Future[None], outcome: Any) -> None:
    if future.done():  # its awaiting task was cancelled
        return
    if isinstance(outcome, StoreFailed):
        future.set_exception(outcome)
    else:
        future.set_result(None)


Answered = Callable[[ClaimResult | ClaimsUnavailable], None]  # a claim's outcome, given on the loop


def submit_claim(deals: Deals, store: ClaimsStore, req: ClaimRequest, answered: Answered) -> None:
    """Decide on the loop; `answered(result)` once the decision is durable, `answered(StoreFailed)` if not.

    A retry gets the remembered answer and writes no row, but is answered only after
    everything queued before it commits: rows commit in queue order, so by then its
    first answer is durable too. `not_open` binds nothing and is answered at once.
    StoreFailed is raised at once when the store already refuses writes.
    """
    known = deals.answered(req.request_id)
    if known is not None:
        store.after_queued(answered, known)
        return
    result = deals.decide(req)
    if result.reason == "not_open":
        answered(result)
    else:
        store.save_claim(req, result, answered)


async def awaited(submit: Callable[[ClaimRequest, Answered], None], req: ClaimRequest) -> ClaimResult:
    """A claim submitted and awaited: the answer once durable, ClaimsUnavailable raised."""
    future: asyncio.Future[ClaimResult | ClaimsUnavailable] = asyncio.get_running_loop().create_future()
    submit(req, lambda outcome: future.done() or future.set_result(outcome))  # done: the awaiter was cancelled
    outcome = await future
    if isinstance(outcome, ClaimsUnavailable):
        raise outcome
    return outcome


async def claim(deals: Deals, store: ClaimsStore, req: ClaimRequest) -> ClaimResult:
    """`submit_claim`, awaited."""
    return await awaited(functools.partial(submit_claim, deals, store), req)
