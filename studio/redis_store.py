"""Flash-sale claims on Redis, shared by every `linkup serve` process.

One Lua script (loaded once, run with EVALSHA) decides a claim atomically inside Redis: a request id
it has answered gets the same answer again; otherwise it checks the batch (exists for this stream,
not closed, open at the claimer's media time), the viewer's limit and the stock, then decrements,
counts the viewer's coupon, remembers the answer by request id and appends the granted order to the
`linkup:orders` stream, all in one step no other claim can interleave with.

An acknowledged claim is one whose script has run: with Redis's AOF on `appendfsync always` (what the
tests and docs/scaling.md use) Redis writes and fsyncs it before replying, batching every command of a
loop turn into one fsync (group commit, the same trade the embedded store makes).

`OrderConsumer` (one per process, in one consumer group) copies granted orders into the SQLite claims
table (the rows the embedded store writes) and acknowledges a stream entry only after its commit. At
start it replays its own pending entries (a restart after a crash); entries left pending by a process
that died are taken over with XAUTOCLAIM once they have been idle for `idle_timeout`.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Mapping
from types import MappingProxyType

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from studio.backend import BackendError
from studio.claims_store import Answered, ClaimsStore, ClaimsUnavailable, StoreFailed, awaited
from studio.deals import CLOSE_GRACE, Batch, ClaimRequest, ClaimResult, State
from studio.redis_bus import Outbox

log = logging.getLogger(__name__)

ORDERS = "linkup:orders"
GROUP = "linkup-db"
ANSWERS = "linkup:answers"  # request id -> the answer, forever
BATCHES = "linkup:batches"  # the set of batch ids
READ_COUNT = 1000  # orders per read, written in one SQLite transaction
MAX_PIPELINE = 500  # claims per pipeline
MAX_IN_FLIGHT = 4  # pipelines awaiting Redis at once (each holds one connection)


def batch_key(batch: str) -> str:
    return f"linkup:batch:{batch}"


def held_key(batch: str) -> str:
    return f"linkup:held:{batch}"


# The same rules and precedence as studio.deals.Deals (unknown_batch, closed, not_open, limit_reached,
# sold_out; not_open is never remembered), inside Redis.
# KEYS: batch hash, held-per-viewer hash, answers hash, orders stream
# ARGV: request id, viewer id, stream id, media time, wall time, batch id
# Answers are JSON arrays [ok, reason|false, coupon|false, left]. A granted order is one stream field,
# `order`: [request id, viewer id, stream id, batch, coupon, left, media time, wall time] (one field,
# not eight: parsing each field of each entry is most of what the consumer costs).
CLAIM_LUA = """
local known = redis.call('HGET', KEYS[3], ARGV[1])
if known then return known end
local b = redis.call('HMGET', KEYS[1], 'stream_id', 'left', 'per_viewer_limit', 'coupon', 'open_at', 'closes_at')
local answer
if not b[1] or b[1] ~= ARGV[3] then
  answer = {false, 'unknown_batch', false, 0}
else
  local left = tonumber(b[2])
  if b[6] and tonumber(ARGV[4]) >= tonumber(b[6]) then
    answer = {false, 'closed', false, left}
  elseif not b[5] or tonumber(ARGV[4]) < tonumber(b[5]) then
    return cjson.encode({false, 'not_open', false, left})
  elseif tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0') >= tonumber(b[3]) then
    answer = {false, 'limit_reached', false, left}
  elseif left <= 0 then
    answer = {false, 'sold_out', false, 0}
  else
    redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
    left = redis.call('HINCRBY', KEYS[1], 'left', -1)
    redis.call('XADD', KEYS[4], '*', 'order',
               cjson.encode({ARGV[1], ARGV[2], ARGV[3], ARGV[6], b[4], left, tonumber(ARGV[4]), tonumber(ARGV[5])}))
    answer = {true, false, b[4], left}
  end
end
local text = cjson.encode(answer)
redis.call('HSET', KEYS[3], ARGV[1], text)
return text
"""


def decode_answer(request_id: str, text: str) -> ClaimResult:
    ok, reason, coupon, left = json.loads(text)
    return ClaimResult(request_id, bool(ok), reason or None, coupon or None, int(left))


class BatchCache:
    """This process's view of every batch in Redis: terms, stock left, open and end times.

    Read by pages, the host and the deal feedback (sync, no I/O); refreshed by `RedisClaims.refresh`
    about twice a second and lowered at once by answers and deal events. Stock only goes down, so the
    lowest value seen is the freshest. Open and end times follow the rules of `Deals.cue`.
    """

    def __init__(self) -> None:
        self._batches: dict[str, Batch] = {}
        self._left: dict[str, int] = {}
        self._open_at: dict[str, float] = {}
        self._closes_at: dict[str, float] = {}

    @property
    def batches(self) -> Mapping[str, Batch]:
        return MappingProxyType(self._batches)

    def left(self, batch: str) -> int:
        return self._left[batch]

    def granted(self, batch: str) -> int:
        return self._batches[batch].stock - self._left[batch]

    def open_at(self, batch: str) -> float | None:
        return self._open_at.get(batch)

    def state(self, batch: str, media_time: float) -> State:
        closes_at = self._closes_at.get(batch)
        if closes_at is not None and media_time >= closes_at - CLOSE_GRACE:  # as Deals.state: never reopens
            return "closed"
        if self._left[batch] <= 0:
            return "sold_out"
        return "waiting" if batch not in self._open_at else "open"

    def cue(self, stream_id: str, kind: str, product_id: str, media_time: float) -> dict[str, tuple[str, float]]:
        """Deals.cue's rules on the cache: the touched batches and the Redis field and value each one sets."""
        touched = {}
        for b in self._batches.values():
            if b.stream_id != stream_id or b.product_id != product_id:
                continue
            ended = b.batch in self._closes_at
            if kind == "link_up" and not ended:
                touched[b.batch] = ("open_at", self._open_at.setdefault(b.batch, media_time))
            elif kind == "hide_card" and b.batch in self._open_at and not ended:
                self._closes_at[b.batch] = media_time + CLOSE_GRACE
                touched[b.batch] = ("closes_at", media_time + CLOSE_GRACE)
        return touched

    def put(self, fields: Mapping[str, str], batch: str) -> None:
        if batch not in self._batches:
            self._batches[batch] = Batch(batch, fields["stream_id"], fields["product_id"], int(fields["stock"]),
                                         int(fields["per_viewer_limit"]), fields["coupon"])
        self.saw(batch, int(fields["left"]))
        if fields.get("open_at") is not None:
            self._open_at.setdefault(batch, float(fields["open_at"]))
        if fields.get("closes_at") is not None:
            self._closes_at.setdefault(batch, float(fields["closes_at"]))

    def saw(self, batch: str, left: int) -> None:
        if batch in self._batches:
            self._left[batch] = min(self._left.get(batch, left), left)

    def opened(self, batch: str, media_time: float) -> None:
        self._open_at.setdefault(batch, media_time)


class RedisClaims:
    """The claims backend for several processes: decided in Redis, copied to SQLite by the consumer."""

    def __init__(self, redis: Redis, outbox: Outbox, store: ClaimsStore, node: str, idle_timeout: float = 30.0) -> None:
        self.redis = redis
        self.outbox = outbox
        self.store = store
        self.deals = BatchCache()
        self.consumer = OrderConsumer(redis, store, node, idle_timeout)
        self._sha = ""
        self._queue: list[tuple[ClaimRequest, asyncio.Future[str]]] = []
        self._kick_scheduled = False
        self._in_flight = 0
        self._refreshing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            where = self.redis.connection_pool.connection_kwargs
            raise BackendError(f"redis at {where.get('host', where.get('path'))}:{where.get('port', '')}: "
                               f"cannot connect ({exc})") from None
        await self.store.start()
        self._sha = await self.redis.script_load(CLAIM_LUA)  # loaded once; claims run it with EVALSHA
        await self.refresh()
        await self.consumer.start()

    async def close(self) -> None:
        await self.consumer.close()
        await self.store.close()
        await self.redis.aclose()

    async def add_batch(self, batch: Batch) -> None:
        """First terms win (a restarted stream keeps its batch and its claims), like the embedded store."""
        key = batch_key(batch.batch)
        terms = {"stream_id": batch.stream_id, "product_id": batch.product_id, "stock": batch.stock,
                 "per_viewer_limit": batch.per_viewer_limit, "coupon": batch.coupon, "left": batch.stock}
        pipe = self.redis.pipeline(transaction=True)
        for name, value in terms.items():
            pipe.hsetnx(key, name, value)
        pipe.sadd(BATCHES, batch.batch)
        pipe.hgetall(key)
        fields = (await pipe.execute())[-1]
        self.deals.put(fields, batch.batch)
        await self.store.save_batch(self.deals.batches[batch.batch])

    def cue(self, stream_id: str, kind: str, product_id: str, media_time: float) -> list[str]:
        """Known here at once; written to Redis ahead of the show event that follows it on the bus.

        HSETNX: the first link-up's time and the first end time stay, whichever process wrote them.
        """
        touched = self.deals.cue(stream_id, kind, product_id, media_time)
        for batch, (name, value) in touched.items():
            self.outbox.command("hsetnx", batch_key(batch), name, repr(value))
        return list(touched)

    async def claim(self, req: ClaimRequest) -> ClaimResult:
        return await awaited(self.submit, req)

    def submit(self, req: ClaimRequest, answered: Answered) -> None:
        """Queued with the claims of this loop turn; answered once Redis has run the script (and logged it)."""
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[str] = loop.create_future()
        reply.add_done_callback(functools.partial(self._replied, req, answered))
        self._queue.append((req, reply))
        if not self._kick_scheduled:
            self._kick_scheduled = True
            loop.call_soon(self._kick)

    def _replied(self, req: ClaimRequest, answered: Answered, reply: asyncio.Future[str]) -> None:
        error = reply.exception()
        if error is not None:  # a script that ran but whose reply was lost is answered again on retry
            answered(ClaimsUnavailable(error))
            return
        result = decode_answer(req.request_id, reply.result())
        if result.reason != "unknown_batch" and req.batch not in self.deals.batches:
            # registered by another process since the last refresh: learn it before answering
            task = asyncio.get_running_loop().create_task(self._refresh_then(req.batch, result, answered))
            self._refreshing.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._refreshing.discard)
            return
        if result.reason != "unknown_batch":
            self.deals.saw(req.batch, result.left)
        answered(result)

    async def _refresh_then(self, batch: str, result: ClaimResult, answered: Answered) -> None:
        try:
            await self.refresh()
        except RedisError:
            log.warning("could not learn batch %s from Redis; its stock shows once it is refreshed", batch)
        if batch in self.deals.batches:
            self.deals.saw(batch, result.left)
        answered(result)

    def _kick(self) -> None:
        """Claims that arrived together go to Redis together: one pipeline of EVALSHA, a few in flight."""
        self._kick_scheduled = False
        while self._queue and self._in_flight < MAX_IN_FLIGHT:
            group, self._queue = self._queue[:MAX_PIPELINE], self._queue[MAX_PIPELINE:]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(group))
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight -= 1
        self._kick()

    async def _send(self, group: list[tuple[ClaimRequest, asyncio.Future[str]]]) -> None:
        for attempt in range(2):
            pipe = self.redis.pipeline(transaction=False)
            now = repr(time.time())
            for req, _ in group:
                pipe.evalsha(self._sha, 4, batch_key(req.batch), held_key(req.batch), ANSWERS, ORDERS,
                             req.request_id, req.viewer_id, req.stream_id, repr(float(req.media_time)), now, req.batch)
            try:
                replies = await pipe.execute(raise_on_error=False)
            except RedisError as exc:  # nothing is known about these claims: their claimers may retry
                replies = [exc] * len(group)
            unloaded = []
            for (req, future), reply in zip(group, replies):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    unloaded.append((req, future))  # Redis lost its scripts (restarted): the script did not run
                elif not future.done():
                    if isinstance(reply, Exception):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
            if not unloaded:
                return
            self._sha = await self.redis.script_load(CLAIM_LUA)
            group = unloaded

    async def refresh(self) -> None:
        """Learn batches other processes registered, and the stock and open times of all of them."""
        ids = sorted(await self.redis.smembers(BATCHES))
        pipe = self.redis.pipeline(transaction=False)
        for batch in ids:
            pipe.hgetall(batch_key(batch))
        for batch, fields in zip(ids, await pipe.execute()):
            if fields:
                self.deals.put(fields, batch)


class OrderConsumer:
    """Copies granted orders from the Redis stream into SQLite; XACK only after the commit."""

    def __init__(self, redis: Redis, store: ClaimsStore, node: str, idle_timeout: float) -> None:
        self.redis = redis
        self.store = store
        self.node = node
        self.idle_timeout = idle_timeout
        self.written = 0  # orders this consumer committed (replays included)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        try:
            await self.redis.xgroup_create(ORDERS, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Write what is waiting in the stream (a clean shutdown leaves nothing for a restart), then stop."""
        self._stopping = True
        if self._task is not None:
            await asyncio.wait([self._task])
            self._task = None

    async def drain(self, timeout: float) -> None:
        """Wait until every order is in SQLite: written entries are deleted, so an empty stream is a drained one."""
        async with asyncio.timeout(timeout):
            while await self.redis.xlen(ORDERS):
                await asyncio.sleep(0.05)

    async def _replay_own(self) -> None:
        """Entries this consumer read before a crash or restart and never acknowledged."""
        while True:
            reply = await self.redis.xreadgroup(GROUP, self.node, {ORDERS: "0"}, count=READ_COUNT)
            entries = reply[0][1] if reply else []
            if not entries:
                return
            await self._write(entries)

    async def _run(self) -> None:
        claimed_at = 0.0
        replayed = False
        while True:
            stopping = self._stopping
            try:
                if not replayed:
                    await self._replay_own()
                    replayed = True
                if not stopping and time.monotonic() - claimed_at >= self.idle_timeout / 2:
                    claimed_at = time.monotonic()
                    await self._take_over()
                reply = await self.redis.xreadgroup(GROUP, self.node, {ORDERS: ">"}, count=READ_COUNT,
                                                    block=None if stopping else 200)
                entries = reply[0][1] if reply else []
                if entries:
                    await self._write(entries)
                elif stopping:
                    return  # nothing left unread
            except RedisError as exc:
                if stopping:
                    log.warning("order consumer %s: %s; unwritten orders stay in Redis for the next start", self.node, exc)
                    return
                log.warning("order consumer %s: %s; retrying", self.node, exc)
                await asyncio.sleep(0.5)
            except StoreFailed:
                # the database refuses writes: leave the orders pending for another process to take over
                log.exception("order consumer %s: the claims database failed; this process stops consuming", self.node)
                return

    async def _take_over(self) -> None:
        """Entries pending on a consumer (process) that has not acknowledged them for `idle_timeout`."""
        start = "0-0"
        while True:
            reply = await self.redis.xautoclaim(ORDERS, GROUP, self.node, int(self.idle_timeout * 1000),
                                                start_id=start, count=READ_COUNT)
            start, entries = reply[0], reply[1]
            if entries:
                log.warning("order consumer %s: took over %d orders left pending by a dead consumer", self.node, len(entries))
                await self._write(entries)
            if start in ("0-0", b"0-0"):
                return

    async def _write(self, entries: list[tuple[str, dict[str, str] | None]]) -> None:
        commits = []
        for _, fields in entries:
            if not fields:
                continue  # deleted from the stream: nothing left to write
            request_id, viewer_id, stream_id, batch, coupon, left, media_time, _at = json.loads(fields["order"])
            req = ClaimRequest(request_id, viewer_id, stream_id, batch, float(media_time))
            commits.append(self.store.commit(req, ClaimResult(request_id, True, None, coupon or None, int(left))))
        await asyncio.gather(*commits)  # one group commit; raises StoreFailed and leaves them pending
        ids = [entry_id for entry_id, _ in entries]
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(ORDERS, GROUP, *ids)
        pipe.xdel(ORDERS, *ids)
        await pipe.execute()
        self.written += len(commits)

