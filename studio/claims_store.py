"""Makes flash-sale decisions durable, with group commit.

A claim is answered only once its row is on disk. One fsync per claim would
cap a flash sale at a few hundred claims a second, so rows are written in
groups: the loop gathers what one iteration decided into a frame and sends it
to the writer process (studio.claims_writer), which commits everything that
has arrived in one transaction and acknowledges each frame; the frame's
claims are then answered together. The event loop never touches the disk
and shares no GIL with the writer; per claim it only appends a row and a
callback (no future or task per claim).

What is written, and how durably: studio.claims_sql.
"""
from __future__ import annotations

import asyncio
import collections
import fcntl
import functools
import logging
import os
import struct
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from studio import claims_sql
from studio.deals import Batch, ClaimRequest, ClaimResult, Deals

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0  # for the writer to open the database
LOCK_WAIT = 3.0  # for the writer of a server that was just killed to be gone (it dies with it)


class ClaimsUnavailable(RuntimeError):
    """The claim could not be decided or made durable (Redis unreachable, the database failing).

    Nothing was acknowledged; a retry with the same request id gets the claim's one answer.
    """

    def __init__(self, cause: BaseException | str) -> None:
        super().__init__(f"claims are unavailable right now ({cause}); try again")


class StoreFailed(ClaimsUnavailable):
    """A write failed: memory may now be ahead of disk, so the store takes no more writes."""


class StoreError(RuntimeError):
    """The claims database cannot be used at start-up: the server must not serve claims."""


class StoreBusy(StoreError):
    """Another server holds the claims database: two would each promise the same coupons."""


# Run on the loop with an item's value once it is durable, or with the StoreFailed that kept it from disk.
# The value rides beside its callback, so a claim needs no partial or closure to be answered.
Done = Callable[[Any], None]
_Waiting = list[tuple[Done, Any]]  # a frame's callbacks, with the values they are answered with


class ClaimsStore:
    def __init__(self, path: Path, unique_requests: bool = False) -> None:
        """`unique_requests`: for a writer that may write the same request twice (a replay).

        Without it the store is the claims' only writer, and the process's memory (Deals) must
        match the disk: `start` takes a lock on the database that a second server would wait for.
        """
        self._path = path
        self._exclusive = not unique_requests
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: int | None = None
        self._writer: subprocess.Popen[bytes] | None = None
        self._frames: asyncio.WriteTransport | None = None
        self._acks: _Acks | None = None
        self._rows: list[tuple[int, tuple[Any, ...]]] = []  # decided on this loop iteration
        self._waiting: _Waiting = []  # their callbacks (and barriers')
        self._sent: collections.deque[_Waiting] = collections.deque()  # a frame each, oldest first
        self._failed: BaseException | None = None

    async def start(self) -> None:
        """Start the writer process, which creates the tables (and, for the only writer, take the lock first)."""
        self._loop = loop = asyncio.get_running_loop()
        if self._exclusive:
            self._lock = await _locked(self._path, LOCK_WAIT)
        try:
            to_writer, frames_in = os.pipe()
            acks_out, from_writer = os.pipe()
            try:
                # cwd: `-m` then finds the same studio package as this process's, wherever it lives
                self._writer = subprocess.Popen(
                    [sys.executable, "-m", "studio.claims_writer", str(self._path.resolve()), str(os.getpid()),
                     *(() if self._exclusive else ("--unique-requests",))],
                    stdin=to_writer, stdout=from_writer, pass_fds=() if self._lock is None else (self._lock,),
                    cwd=Path(__file__).resolve().parents[1])
            except BaseException:
                os.close(frames_in)
                os.close(acks_out)
                raise
            finally:
                os.close(to_writer)
                os.close(from_writer)
            self._frames, _ = await loop.connect_write_pipe(lambda: _Frames(self), open(frames_in, "wb", buffering=0))
            ready = loop.create_future()
            _, self._acks = await loop.connect_read_pipe(lambda: _Acks(self, ready), open(acks_out, "rb", buffering=0))
            await asyncio.wait_for(ready, START_TIMEOUT)
        except BaseException as exc:
            reason = self._acks.reason if self._acks is not None else None
            await self.close()
            if isinstance(exc, (StoreFailed, TimeoutError)):
                raise StoreError(f"{self._path}: cannot use the claims database ({reason or 'its writer did not start'})") from None
            raise

    async def close(self) -> None:
        """Writes everything already queued, then stops the writer (and only then lets go of the lock)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            if self._frames is not None:
                self._flush()
                self._frames.close()  # end of input: the writer commits what it has and exits
            await asyncio.to_thread(writer.wait)
            if self._acks is not None:
                await self._acks.closed
        if self._sent or self._waiting:  # the writer failed, and they have been failed with it
            self._fail(StoreFailed("the store was closed"))
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def load(self, deals: Deals) -> None:
        """Restore every batch and every final answer; call after `start`, before serving claims."""
        conn = claims_sql.connect(self._path)
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
            self._put, claims_sql.BATCH, (b.batch, b.stream_id, b.product_id, b.stock, b.per_viewer_limit, b.coupon)))

    async def commit(self, req: ClaimRequest, result: ClaimResult) -> None:
        """Resolves only after the row is durable (and every row queued before it)."""
        await self._wait(functools.partial(self.save_claim, req, result))

    def save_claim(self, req: ClaimRequest, result: ClaimResult, done: Done) -> None:
        """Queue the claim's row; `done(result)` runs on the loop once it is durable."""
        if result.reason == "not_open":
            raise ValueError("not_open answers are not final; there is nothing to store")
        self._put(claims_sql.CLAIM, (req.request_id, req.viewer_id, req.batch, int(result.ok), result.reason,
                                     result.coupon, result.left, req.media_time, time.time()), done, result)

    def after_queued(self, done: Done, value: Any = None) -> None:
        """`done(value)` runs once everything queued so far is durable; writes nothing itself."""
        self._check()
        if self._waiting:
            self._waiting.append((done, value))
        elif self._sent:
            self._sent[-1].append((done, value))
        else:  # nothing is on its way to disk
            assert self._loop is not None
            self._loop.call_soon(_settle, [(done, value)], None)

    async def _wait(self, put: Callable[[Done], None]) -> None:
        if self._loop is None:
            raise RuntimeError("ClaimsStore is not started")
        future = self._loop.create_future()
        put(functools.partial(_resolve, future))
        await future

    def _check(self) -> None:
        if self._failed is not None:
            raise StoreFailed("an earlier write failed") from self._failed
        if self._writer is None:
            raise RuntimeError("ClaimsStore is not started")

    def _put(self, statement: int, params: tuple[Any, ...], done: Done, value: Any = None) -> None:
        self._check()
        if not self._waiting:
            assert self._loop is not None
            self._loop.call_soon(self._flush)  # once this iteration's claims are all in
        self._rows.append((statement, params))
        self._waiting.append((done, value))

    def _flush(self) -> None:
        if not self._rows or self._frames is None or self._failed is not None:
            return
        try:
            frame = orjson.dumps(self._rows)
        except TypeError as exc:  # a value JSON cannot carry: a bug, and its claims must not hang
            self._fail(exc)
            return
        self._frames.write(struct.pack("!I", len(frame)) + frame)
        self._sent.append(self._waiting)
        self._rows, self._waiting = [], []

    def _committed(self, frames: int) -> None:
        for _ in range(frames):
            _settle(self._sent.popleft(), None)

    def _fail(self, error: BaseException) -> None:
        """Everything not yet acknowledged fails; the store takes no more writes."""
        if self._failed is None:
            self._failed = error
        failed = StoreFailed(error) if not isinstance(error, StoreFailed) else error
        waiting = [w for frame in self._sent for w in frame] + self._waiting
        self._sent.clear()
        self._rows, self._waiting = [], []
        if waiting:
            _settle(waiting, failed)


class _Frames(asyncio.Protocol):
    """The pipe to the writer; a broken pipe fails the store."""

    def __init__(self, store: ClaimsStore) -> None:
        self.store = store

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.store._fail(exc)


class _Acks(asyncio.Protocol):
    """The writer's answers: `=` ready, `+` a frame committed, `-error\\n` a failed write."""

    def __init__(self, store: ClaimsStore, ready: asyncio.Future[None]) -> None:
        self.store, self.ready = store, ready
        self.error: bytearray | None = None
        self.reason: str | None = None  # why the writer stopped, once it has
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.error is not None:
            self.error += data
            return
        if not self.ready.done() and data[:1] == b"=":
            self.ready.set_result(None)
            data = data[1:]
        failed = data.find(b"-")
        committed = data.count(b"+", 0, None if failed < 0 else failed)
        if committed:
            self.store._committed(committed)
        if failed >= 0:
            self.error = bytearray(data[failed + 1:])

    def connection_lost(self, exc: Exception | None) -> None:
        message = (self.error or b"").decode(errors="replace").strip()
        self.reason = message or str(exc or "the claims writer stopped")
        failed = StoreFailed(self.reason)
        if not self.ready.done():
            self.ready.set_exception(failed)
        if message or self.store._writer is not None:  # not the end of a close
            self.store._fail(failed)
        self.closed.set_result(None)


async def _locked(path: Path, wait: float) -> int:
    """An exclusive lock on the database's lock file, waiting a while for a killed server's writer to go."""
    try:
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"{path}.lock: cannot open the claims database's lock ({exc.strerror})") from None
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise StoreBusy(f"{path} is in use by another running server (it holds {path}.lock): "
                                f"stop that server, or give this one another data folder") from None
            await asyncio.sleep(0.05)


def _settle(waiting: _Waiting, failed: BaseException | None) -> None:
    for done, value in waiting:
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
