"""SQLite quota ledger: the embedded default; atomic across processes on one host via ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from agent_runtime._sqlite import connect_sqlite_inline, sqlite_errors
from agent_runtime.limits.quota.base import Bucket, QuotaLedger

__all__ = ["SQLiteQuotaLedger"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_spent (
    bucket TEXT PRIMARY KEY,
    spent INTEGER NOT NULL,
    window_end REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quota_reservations (
    bucket TEXT NOT NULL,
    rid TEXT NOT NULL,
    amount INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (bucket, rid)
);
CREATE TABLE IF NOT EXISTS quota_applied (
    op_id TEXT PRIMARY KEY,
    applied_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_reservations_expiry ON quota_reservations (expires_at);
"""
_ADD_SPENT = (
    "INSERT INTO quota_spent (bucket, spent, window_end) VALUES (?, ?, ?) "
    "ON CONFLICT (bucket) DO UPDATE SET spent = spent + excluded.spent"
)


class SQLiteQuotaLedger(QuotaLedger):
    """Spend per bucket in ``quota_spent``, live reservations in ``quota_reservations``.

    Every request reserves and settles, so the transactions run inline on the event loop (see
    ``_sqlite``): each is a handful of statements, microseconds, with no await inside, so two of one
    process never interleave; ``BEGIN IMMEDIATE`` excludes other processes. Give the ledger a database
    file of its own: an inline transaction waiting for a write lock that an aiosqlite connection of the
    same process holds between two awaits would wait for the loop it blocks (until the busy timeout).
    """

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect_sqlite_inline(self.path, _SCHEMA)
        return self._conn

    def _transaction(self, operation: str, body: Callable[[sqlite3.Connection, float], _T]) -> _T:
        db = self._db()
        with sqlite_errors(operation):
            db.execute("BEGIN IMMEDIATE")
            try:
                now = self._clock()
                db.execute("DELETE FROM quota_reservations WHERE expires_at <= ?", (now,))
                result = body(db, now)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

    @staticmethod
    def _row(db: sqlite3.Connection, bucket: str, rid: str) -> tuple[int, int]:
        sql = (
            "SELECT (SELECT spent FROM quota_spent WHERE bucket = ?),"
            " (SELECT SUM(amount) FROM quota_reservations WHERE bucket = ? AND rid != ?)"
        )
        spent, reserved = db.execute(sql, (bucket, bucket, rid)).fetchone()
        return int(spent or 0), int(reserved or 0)

    async def _reserve(
        self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int], ttl_s: float
    ) -> tuple[int, bool] | None:
        def body(db: sqlite3.Connection, now: float) -> tuple[int, bool] | None:
            for i, (b, amount) in enumerate(zip(buckets, amounts, strict=True)):
                spent, reserved = self._row(db, b.key, rid)
                if spent + reserved + amount > b.limit:
                    return i, spent + amount <= b.limit
            db.executemany(
                "INSERT OR REPLACE INTO quota_reservations (bucket, rid, amount, expires_at) VALUES (?, ?, ?, ?)",
                [(b.key, rid, amount, now + ttl_s) for b, amount in zip(buckets, amounts, strict=True)],
            )
            return None

        return self._transaction("quota.reserve", body)

    @staticmethod
    def _first_time(db: sqlite3.Connection, op_id: str | None, now: float) -> bool:
        """Record ``op_id`` as applied; ``False`` if it already was (the caller then writes nothing)."""
        if op_id is None:
            return True
        cur = db.execute(
            "INSERT INTO quota_applied (op_id, applied_at) VALUES (?, ?) ON CONFLICT (op_id) DO NOTHING", (op_id, now)
        )
        return cur.rowcount == 1

    async def _settle(self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int], op_id: str | None) -> None:
        def body(db: sqlite3.Connection, now: float) -> None:
            if not self._first_time(db, op_id, now):
                return
            for b, amount in zip(buckets, amounts, strict=True):
                db.execute("DELETE FROM quota_reservations WHERE bucket = ? AND rid = ?", (b.key, rid))
                db.execute(_ADD_SPENT, (b.key, amount, b.window_end))
            # Closed windows are kept a month for reporting, then dropped.
            db.execute("DELETE FROM quota_spent WHERE window_end < ?", (now - 31 * 86_400,))
            db.execute("DELETE FROM quota_applied WHERE applied_at < ?", (now - 62 * 86_400,))

        self._transaction("quota.settle", body)

    async def _adjust(self, buckets: Sequence[Bucket], amounts: Sequence[int], op_id: str | None) -> None:
        def body(db: sqlite3.Connection, now: float) -> None:
            if not self._first_time(db, op_id, now):
                return
            db.executemany(
                _ADD_SPENT, [(b.key, amount, b.window_end) for b, amount in zip(buckets, amounts, strict=True)]
            )

        self._transaction("quota.adjust", body)

    async def _status(self, buckets: Sequence[Bucket]) -> list[tuple[int, int]]:
        return self._transaction("quota.status", lambda db, now: [self._row(db, b.key, "") for b in buckets])

    async def ping(self) -> None:
        with sqlite_errors("quota.ping"):
            self._db().execute("SELECT 1").fetchone()

    async def aclose(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
