"""SQLite quota ledger: the embedded default; atomic across processes on one host via ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent_runtime._sqlite import connect_sqlite, sqlite_errors, sqlite_ping
from agent_runtime.limits.quota.base import Bucket, QuotaLedger

__all__ = ["SQLiteQuotaLedger"]

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
CREATE INDEX IF NOT EXISTS quota_reservations_expiry ON quota_reservations (expires_at);
"""
_ADD_SPENT = (
    "INSERT INTO quota_spent (bucket, spent, window_end) VALUES (?, ?, ?) "
    "ON CONFLICT (bucket) DO UPDATE SET spent = spent + excluded.spent"
)


class SQLiteQuotaLedger(QuotaLedger):
    """Spend per bucket in ``quota_spent``, live reservations in ``quota_reservations``."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        self.path = path
        self._conn: Any = None
        self._lock = asyncio.Lock()  # one transaction at a time on our connection

    async def _db(self) -> Any:
        if self._conn is None:
            conn = await connect_sqlite(self.path)
            async with sqlite_errors("quota.init"):
                await conn.executescript(_SCHEMA)
                await conn.commit()
            self._conn = conn
        return self._conn

    async def _transaction(self, operation: str, body: Callable[[Any, float], Any]) -> Any:
        async with self._lock:
            db = await self._db()
            async with sqlite_errors(operation):
                await db.execute("BEGIN IMMEDIATE")
                try:
                    now = self._clock()
                    await db.execute("DELETE FROM quota_reservations WHERE expires_at <= ?", (now,))
                    result = await body(db, now)
                except BaseException:
                    await db.rollback()
                    raise
                await db.commit()
                return result

    @staticmethod
    async def _row(db: Any, bucket: str, rid: str) -> tuple[int, int]:
        sql = (
            "SELECT (SELECT spent FROM quota_spent WHERE bucket = ?),"
            " (SELECT SUM(amount) FROM quota_reservations WHERE bucket = ? AND rid != ?)"
        )
        async with db.execute(sql, (bucket, bucket, rid)) as cur:
            spent, reserved = await cur.fetchone()
        return int(spent or 0), int(reserved or 0)

    async def _reserve(
        self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int], ttl_s: float
    ) -> tuple[int, bool] | None:
        async def body(db: Any, now: float) -> tuple[int, bool] | None:
            for i, (b, amount) in enumerate(zip(buckets, amounts, strict=True)):
                spent, reserved = await self._row(db, b.key, rid)
                if spent + reserved + amount > b.limit:
                    return i, spent + amount <= b.limit
            await db.executemany(
                "INSERT OR REPLACE INTO quota_reservations (bucket, rid, amount, expires_at) VALUES (?, ?, ?, ?)",
                [(b.key, rid, amount, now + ttl_s) for b, amount in zip(buckets, amounts, strict=True)],
            )
            return None

        result: tuple[int, bool] | None = await self._transaction("quota.reserve", body)
        return result

    async def _settle(self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int]) -> None:
        async def body(db: Any, now: float) -> None:
            for b, amount in zip(buckets, amounts, strict=True):
                await db.execute("DELETE FROM quota_reservations WHERE bucket = ? AND rid = ?", (b.key, rid))
                await db.execute(_ADD_SPENT, (b.key, amount, b.window_end))
            # Closed windows are kept a month for reporting, then dropped.
            await db.execute("DELETE FROM quota_spent WHERE window_end < ?", (now - 31 * 86_400,))

        await self._transaction("quota.settle", body)

    async def _adjust(self, buckets: Sequence[Bucket], amounts: Sequence[int]) -> None:
        async def body(db: Any, now: float) -> None:
            await db.executemany(
                _ADD_SPENT, [(b.key, amount, b.window_end) for b, amount in zip(buckets, amounts, strict=True)]
            )

        await self._transaction("quota.adjust", body)

    async def _status(self, buckets: Sequence[Bucket]) -> list[tuple[int, int]]:
        async def body(db: Any, now: float) -> list[tuple[int, int]]:
            return [await self._row(db, b.key, "") for b in buckets]

        rows: list[tuple[int, int]] = await self._transaction("quota.status", body)
        return rows

    async def ping(self) -> None:
        async with self._lock:
            await sqlite_ping(await self._db(), "quota.ping")

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
