"""The claims store: answers only after rows are durable, state survives restarts and kill -9."""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from studio import claims_store
from studio.claims_store import ClaimsStore, ClaimsUnavailable, StoreBusy, claim, submit_claim
from studio.deals import Batch, ClaimRequest, ClaimResult, Deals
from tests.processes import claims_writers, gone

ROOT = Path(__file__).resolve().parents[1]
FIFTY = Batch("flash", "s1", "p1", 50, 1, "满199减20")


def rows(path: Path, sql: str) -> list[tuple]:
    """Read with a fresh connection: what a restarted server would find on disk."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def opened(path: Path, *batches: Batch) -> tuple[Deals, ClaimsStore]:
    deals, store = Deals(), ClaimsStore(path)
    await store.start()
    store.load(deals)
    for b in batches:
        deals.add_batch(b)
        await store.save_batch(b)
        deals.open(b.batch, 0.0)
    return deals, store


def test_200_concurrent_claims_on_50_coupons_then_restart(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"

    async def flash_sale() -> list[ClaimResult]:
        deals, store = await opened(db, FIFTY)
        try:
            return await asyncio.gather(*(
                claim(deals, store, ClaimRequest(f"r{i}", f"v{i}", "s1", "flash", 1.0)) for i in range(200)))
        finally:
            await store.close()

    results = asyncio.run(flash_sale())
    assert sum(r.ok for r in results) == 50
    assert {r.reason for r in results if not r.ok} == {"sold_out"}
    assert rows(db, "SELECT count(*), sum(ok) FROM claims WHERE batch = 'flash'") == [(200, 50)]
    winners = {r.request_id for r in results if r.ok}
    assert {rid for (rid,) in rows(db, "SELECT request_id FROM claims WHERE ok = 1")} == winners

    async def after_restart() -> tuple[Deals, list[ClaimResult]]:
        deals, store = Deals(), ClaimsStore(db)
        await store.start()
        store.load(deals)
        try:
            deals.open("flash", 0.0)  # the link-up is replayed from the event log, not this store
            answers = [await claim(deals, store, ClaimRequest(rid, "v?", "s1", "flash", 2.0))
                       for rid in ("r0", "r199", "new")]
            return deals, answers
        finally:
            await store.close()

    deals, (r0, r199, new) = asyncio.run(after_restart())
    assert deals.granted("flash") == 50 and deals.left("flash") == 0
    assert r0 == results[0] and r199 == results[199]
    assert new == ClaimResult("new", False, "sold_out", left=0)
    assert rows(db, "SELECT count(*) FROM claims") == [(201,)]


def test_a_big_group_with_retries_inside_it_keeps_one_row_per_request(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"
    batch = Batch("big", "s1", "p1", 500, 1, "券")

    async def wave() -> list[ClaimResult]:
        deals, store = await opened(db, batch)
        try:  # 1,000 at once: several multi-row INSERTs in one transaction, retries among them
            return await asyncio.gather(*(
                claim(deals, store, ClaimRequest(f"r{i % 800}", f"v{i % 800}", "s1", "big", 1.0)) for i in range(1000)))
        finally:
            await store.close()

    results = asyncio.run(wave())
    assert sum(r.ok for r in results[:800]) == 500
    assert results[800:] == results[:200]  # a retry in the same group gets the first answer
    assert rows(db, "SELECT count(*), sum(ok), count(DISTINCT viewer_id) FROM claims") == [(800, 500, 800)]
    on_disk = dict(rows(db, "SELECT request_id, ok FROM claims"))
    assert all(on_disk[r.request_id] == r.ok for r in results)


def test_restart_restores_grants_per_viewer_and_batches(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"
    two_each = Batch("b2", "s1", "p2", 10, 2, "立减30")

    async def first_run() -> None:
        deals, store = await opened(db, two_each)
        for rid in ("a", "b"):
            assert (await claim(deals, store, ClaimRequest(rid, "v0", "s1", "b2", 1.0))).ok
        await store.close()

    async def second_run() -> tuple[Deals, ClaimResult]:
        deals, store = Deals(), ClaimsStore(db)
        await store.start()
        store.load(deals)
        deals.open("b2", 0.0)
        try:
            return deals, await claim(deals, store, ClaimRequest("c", "v0", "s1", "b2", 1.0))
        finally:
            await store.close()

    asyncio.run(first_run())
    deals, third = asyncio.run(second_run())
    assert third == ClaimResult("c", False, "limit_reached", left=8)
    assert deals.left("b2") == 8
    assert rows(db, "SELECT batch, stream_id, product_id, stock, per_viewer_limit, coupon FROM batches") == [
        ("b2", "s1", "p2", 10, 2, "立减30")]


def test_resolved_claim_is_already_on_disk(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"

    async def one() -> list[tuple]:
        deals, store = await opened(db, FIFTY)
        try:
            result = await claim(deals, store, ClaimRequest("r1", "v1", "s1", "flash", 3.5))
            assert result.ok
            return rows(db, "SELECT request_id, viewer_id, batch, ok, reason, coupon, left_after, media_time FROM claims")
        finally:
            await store.close()

    assert asyncio.run(one()) == [("r1", "v1", "flash", 1, None, "满199减20", 49, 3.5)]


def test_not_open_is_answered_without_a_row_and_retry_succeeds(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"

    async def run() -> tuple[ClaimResult, list[tuple], ClaimResult]:
        deals, store = Deals(), ClaimsStore(db)
        await store.start()
        try:
            deals.add_batch(FIFTY)
            await store.save_batch(FIFTY)
            early = await claim(deals, store, ClaimRequest("r1", "v1", "s1", "flash", 1.0))
            on_disk = rows(db, "SELECT count(*) FROM claims")
            deals.open("flash", 2.0)
            return early, on_disk, await claim(deals, store, ClaimRequest("r1", "v1", "s1", "flash", 2.0))
        finally:
            await store.close()

    early, on_disk, retry = asyncio.run(run())
    assert early.reason == "not_open" and on_disk == [(0,)]
    assert retry.ok and rows(db, "SELECT request_id, ok FROM claims") == [("r1", 1)]


CHILD = """
import asyncio, sys
from pathlib import Path
from studio.claims_store import ClaimsStore, claim, submit_claim
from studio.deals import Batch, ClaimRequest, Deals

async def main():
    deals, store = Deals(), ClaimsStore(Path(sys.argv[1]))
    await store.start()
    b = Batch("big", "s1", "p1", 10**9, 10**9, "券")
    deals.add_batch(b)
    await store.save_batch(b)
    deals.open("big", 0.0)

    async def one(i):
        r = await claim(deals, store, ClaimRequest(f"r{i}", f"v{i % 7}", "s1", "big", 1.0))
        assert r.ok
        print(r.request_id, flush=True)

    i = 0
    while True:  # waves of concurrent claims, so acknowledgements come from group commits
        await asyncio.gather(*(one(i + k) for k in range(50)))
        i += 50

asyncio.run(main())
"""


def test_every_acknowledged_claim_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(30, child.kill)  # never hang the suite if the child stalls
    watchdog.start()
    try:
        acked = []
        while len(acked) < 2000:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"child exited early with {child.wait()}")
            acked.append(line.strip())
        (writer,) = claims_writers(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        tail, _ = child.communicate()
    finally:
        watchdog.cancel()
    assert child.returncode == -signal.SIGKILL
    assert gone(writer), "the claims writer outlived its server"
    acked += tail.split("\n")[:-1]  # a last line without its newline was not fully printed

    async def restarted() -> Deals:
        deals, store = Deals(), ClaimsStore(db)
        await store.start()  # the lock is free: the old writer is gone
        store.load(deals)
        await store.close()
        return deals

    deals = asyncio.run(restarted())
    assert all(deals.answered(rid) is not None for rid in acked)
    on_disk = {rid for (rid,) in rows(db, "SELECT request_id FROM claims")}
    assert set(acked) <= on_disk
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_a_retry_waits_for_the_first_rows_commit_and_writes_no_row_of_its_own(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"

    async def run() -> tuple[bool, ClaimResult, ClaimResult]:
        deals, store = await opened(db, FIFTY)
        blocker = sqlite3.connect(db, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database: the first row cannot commit yet
            first = asyncio.ensure_future(claim(deals, store, ClaimRequest("r1", "v1", "s1", "flash", 1.0)))
            await asyncio.sleep(0.05)
            retry = asyncio.ensure_future(claim(deals, store, ClaimRequest("r1", "v1", "s1", "flash", 1.0)))
            await asyncio.sleep(0.3)
            answered_early = retry.done() or first.done()
            blocker.execute("COMMIT")
            return answered_early, await first, await retry
        finally:
            blocker.close()
            await store.close()

    answered_early, first, retry = asyncio.run(run())
    assert not answered_early  # neither answer went out before its row was durable
    assert first.ok and retry == first
    assert rows(db, "SELECT request_id, ok FROM claims") == [("r1", 1)]


def test_a_database_from_before_the_append_only_table_still_serves_claims(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE claims (request_id TEXT PRIMARY KEY, viewer_id TEXT NOT NULL, batch TEXT NOT NULL,
            ok INTEGER NOT NULL, reason TEXT, coupon TEXT, left_after INTEGER NOT NULL, media_time REAL NOT NULL,
            created_at REAL NOT NULL);
        INSERT INTO claims VALUES ('old', 'v0', 'flash', 1, NULL, '满199减20', 49, 1.0, 0.0);
    """)
    conn.close()

    async def run() -> list[ClaimResult]:
        deals, store = Deals(), ClaimsStore(db)
        await store.start()
        try:
            deals.add_batch(FIFTY)
            await store.save_batch(FIFTY)
            store.load(deals)
            deals.open("flash", 0.0)
            return [await claim(deals, store, ClaimRequest(rid, f"v-{rid}", "s1", "flash", 1.0)) for rid in ("old", "new", "new")]
        finally:
            await store.close()

    old, new, again = asyncio.run(run())
    assert old == ClaimResult("old", True, None, "满199减20", 49)  # the stored answer, not a second coupon
    assert new.ok and new.left == 48 and again == new
    assert rows(db, "SELECT request_id FROM claims ORDER BY request_id") == [("new",), ("old",)]


def test_a_replaying_writer_gets_the_unique_index_and_writes_each_request_once(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"

    async def replay() -> None:
        store = ClaimsStore(db, unique_requests=True)  # what the Redis order consumer opens
        await store.start()
        try:
            req = ClaimRequest("v1:r1", "v1", "s1", "flash", 1.0)
            granted = ClaimResult("v1:r1", True, None, "券", 9)
            await store.commit(req, granted)
            await store.commit(req, granted)  # the same stream entry again, after a crash before XACK
        finally:
            await store.close()

    asyncio.run(replay())
    assert rows(db, "SELECT request_id, ok FROM claims") == [("v1:r1", 1)]
    assert rows(db, "SELECT count(*) FROM sqlite_master WHERE name = 'claims_request_id'") == [(1,)]


def test_one_claimers_failing_answer_does_not_keep_the_others_from_theirs(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"

    async def run() -> list[ClaimResult]:
        deals, store = await opened(db, FIFTY)
        got: list[ClaimResult] = []

        def broken(outcome: object) -> None:
            raise RuntimeError("this viewer's socket blew up")

        def keep(outcome: object) -> None:
            assert isinstance(outcome, ClaimResult)
            got.append(outcome)

        try:
            submit_claim(deals, store, ClaimRequest("a", "va", "s1", "flash", 1.0), keep)
            submit_claim(deals, store, ClaimRequest("b", "vb", "s1", "flash", 1.0), broken)
            submit_claim(deals, store, ClaimRequest("c", "vc", "s1", "flash", 1.0), keep)
            await store.commit(ClaimRequest("d", "vd", "s1", "flash", 1.0), deals.decide(ClaimRequest("d", "vd", "s1", "flash", 1.0)))
            return got
        finally:
            await store.close()

    got = asyncio.run(run())
    assert [r.request_id for r in got] == ["a", "c"] and all(r.ok for r in got)
    assert rows(db, "SELECT count(*) FROM claims") == [(4,)]


def test_a_second_server_on_the_same_database_is_refused_until_the_first_stops(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "claims.db"
    monkeypatch.setattr(claims_store, "LOCK_WAIT", 0.3)

    async def run() -> tuple[str, ClaimResult]:
        _, first = await opened(db, FIFTY)
        second = ClaimsStore(db)
        try:
            with pytest.raises(StoreBusy) as busy:
                await second.start()  # two servers would each promise the same fifty coupons
        finally:
            await first.close()
        deals = Deals()
        await second.start()
        second.load(deals)
        deals.open("flash", 0.0)
        try:
            return str(busy.value), await claim(deals, second, ClaimRequest("r1", "v1", "s1", "flash", 1.0))
        finally:
            await second.close()

    message, after = asyncio.run(run())
    assert str(db) in message and "another running server" in message
    assert after.ok and after.left == 49


def test_a_dead_writer_fails_the_waiting_claims_and_refuses_new_ones(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"

    async def run() -> tuple[BaseException, BaseException]:
        deals, store = await opened(db, FIFTY)
        blocker = sqlite3.connect(db, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # the writer cannot commit: the claim waits for it
            waiting = asyncio.ensure_future(claim(deals, store, ClaimRequest("r1", "v1", "s1", "flash", 1.0)))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            (writer,) = claims_writers(os.getpid())
            os.kill(writer, signal.SIGKILL)
            with pytest.raises(ClaimsUnavailable) as first:
                await asyncio.wait_for(waiting, 5)
            with pytest.raises(ClaimsUnavailable) as later:
                await claim(deals, store, ClaimRequest("r2", "v2", "s1", "flash", 1.0))
            return first.value, later.value
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
            await store.close()

    first, later = asyncio.run(run())
    assert "try again" in str(first) and "try again" in str(later)
    assert rows(db, "SELECT count(*) FROM claims") == [(0,)]  # nothing was acknowledged, nothing was written


def test_a_write_the_database_refuses_fails_its_claim_and_the_store_takes_no_more(tmp_path: Path) -> None:
    db = tmp_path / "claims.db"

    async def run() -> tuple[ClaimResult, BaseException, BaseException]:
        deals, store = await opened(db, FIFTY)
        try:
            first = await claim(deals, store, ClaimRequest("r1", "v1", "s1", "flash", 1.0))
            conn = sqlite3.connect(db)  # the disk says no to the next row, as a full disk would
            conn.execute("CREATE TRIGGER no BEFORE INSERT ON claims BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
            conn.commit()
            conn.close()
            with pytest.raises(ClaimsUnavailable) as refused:
                await asyncio.wait_for(claim(deals, store, ClaimRequest("r2", "v2", "s1", "flash", 1.0)), 5)
            with pytest.raises(ClaimsUnavailable) as later:
                await claim(deals, store, ClaimRequest("r3", "v3", "s1", "flash", 1.0))
            return first, refused.value, later.value
        finally:
            await store.close()

    first, refused, later = asyncio.run(run())
    assert first.ok and "disk says no" in str(refused) and "try again" in str(later)
    assert rows(db, "SELECT request_id FROM claims") == [("r1",)]  # what was acknowledged, and nothing else
