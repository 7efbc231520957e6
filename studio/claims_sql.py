"""The claims database: its tables, the statements that write it, and how a group is written.

Plain sqlite3 with no asyncio and nothing of the studio's, so the writer process
(studio.claims_writer) starts quickly and the server reads the same definitions.

The claims table is append-only, with no index on request_id: a unique index
takes a random B-tree insert per row (scattered pages into the WAL on every
commit) and cost here twice as much CPU as the row itself. The rows are
unique without it: Deals remembers every final answer, and a retry writes no
second row, it only waits until what was queued before it is durable. The
Redis order consumer, which replays stream entries after a crash, asks for
the index (`unique_requests=True`) and relies on INSERT OR IGNORE.

Durability: WAL with synchronous=FULL, so a commit is fsynced before it is
acknowledged and survives power loss, not only a killed process (NORMAL
would survive kill -9 but may drop the last commits on power loss).
"""
from __future__ import annotations

import functools
import itertools
import sqlite3
from pathlib import Path
from typing import Any

SCHEMA = """
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
UNIQUE_REQUESTS = "CREATE UNIQUE INDEX IF NOT EXISTS claims_request_id ON claims (request_id);"

SAVE_BATCH = """
INSERT INTO batches (batch, stream_id, product_id, stock, per_viewer_limit, coupon) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (batch) DO UPDATE SET stream_id = excluded.stream_id, product_id = excluded.product_id,
    stock = excluded.stock, per_viewer_limit = excluded.per_viewer_limit, coupon = excluded.coupon
"""
_CLAIM_COLUMNS = "request_id, viewer_id, batch, ok, reason, coupon, left_after, media_time, created_at"
_CLAIM_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
_CLAIM_WIDTH = 9
# IGNORE: with the unique index (Redis mode), a replayed order keeps its first row
SAVE_CLAIM = f"INSERT OR IGNORE INTO claims ({_CLAIM_COLUMNS}) VALUES {_CLAIM_VALUES}"
# 9,216 parameters at most: under SQLite's limit of 32,766
ROWS_PER_INSERT = 1024

# What travels to the writer is an index into this tuple, never SQL text.
CLAIM, BATCH = 0, 1
STATEMENTS = (SAVE_CLAIM, SAVE_BATCH)


def connect(path: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def create(path: Path | str, unique_requests: bool) -> None:
    conn = connect(path)
    try:
        conn.executescript(SCHEMA + (UNIQUE_REQUESTS if unique_requests else ""))
    finally:
        conn.close()


def write_group(conn: sqlite3.Connection, items: list[tuple[int, list[Any]]]) -> None:
    """`(statement, params)` items, in order, in one transaction; raises sqlite3.Error with nothing written."""
    runs: list[tuple[int, list[Any]]] = []
    for statement, params in items:
        if runs and runs[-1][0] == statement:
            runs[-1][1].append(params)
        else:
            runs.append((statement, [params]))
    if len(runs) == 1 and runs[0][0] == CLAIM and len(runs[0][1]) <= ROWS_PER_INSERT:
        _insert_claims(conn, runs[0][1])  # one statement is its own transaction (autocommit)
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement, rows in runs:
            if statement == CLAIM:
                for start in range(0, len(rows), ROWS_PER_INSERT):
                    _insert_claims(conn, rows[start:start + ROWS_PER_INSERT])
            else:
                conn.executemany(STATEMENTS[statement], rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _insert_claims(conn: sqlite3.Connection, rows: list[Any]) -> None:
    """A chunk of claims as one multi-row INSERT.

    The row count is padded up to a power of two with rows of NULLs that the statement skips,
    so only eleven statement texts exist and sqlite3's statement cache reuses them instead of
    compiling a new one for every group size.
    """
    size = 1 << (len(rows) - 1).bit_length()
    params = list(itertools.chain.from_iterable(rows))
    params.extend([None] * (_CLAIM_WIDTH * (size - len(rows))))
    conn.execute(_insert_claims_sql(size), params)


@functools.cache
def _insert_claims_sql(rows: int) -> str:
    values = ",".join([_CLAIM_VALUES] * rows)
    # request_id is NOT NULL in every real row: the NULL rows are the padding
    return f"INSERT OR IGNORE INTO claims ({_CLAIM_COLUMNS}) SELECT * FROM (VALUES {values}) WHERE column1 IS NOT NULL"
