"""预约: viewers who asked to be told when a scheduled stream starts. SQLite, off the event loop."""
from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path


class Reservations:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("pragma journal_mode=wal")
            self._db.execute("create table if not exists reservations (stream_id text, viewer_id text, "
                             "created_at real, primary key (stream_id, viewer_id))")

    def _counted(self, stream_id: str) -> int:
        return self._db.execute("select count(*) from reservations where stream_id = ?", (stream_id,)).fetchone()[0]

    def _reserve(self, stream_id: str, viewer_id: str) -> int:
        with self._lock:
            self._db.execute("insert or ignore into reservations values (?, ?, ?)", (stream_id, viewer_id, time.time()))
            return self._counted(stream_id)

    def _count(self, stream_id: str) -> int:
        with self._lock:
            return self._counted(stream_id)

    async def reserve(self, stream_id: str, viewer_id: str) -> int:
        """Idempotent per viewer; returns how many viewers have reserved the stream."""
        return await asyncio.to_thread(self._reserve, stream_id, viewer_id)

    async def count(self, stream_id: str) -> int:
        return await asyncio.to_thread(self._count, stream_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()
