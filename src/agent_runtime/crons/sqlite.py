"""SQLite schedules: the embedded default, shared by the processes of one host through the file.

A tick is claimed by inserting its row into ``cron_ticks`` (primary key ``(cron_id, tick_at)``) with
``ON CONFLICT DO NOTHING``: the process whose insert changed a row owns the tick.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent_runtime._sqlite import connect_sqlite, sqlite_errors, sqlite_fetch, sqlite_ping, sqlite_transaction
from agent_runtime.crons.base import (
    DEFAULT_MAX_PER_TENANT,
    DEFAULT_TICK_RETENTION_S,
    CronStore,
    changed,
    owned,
    too_many,
)
from agent_runtime.crons.schedule import Schedule

__all__ = ["SQLiteCronStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cron_schedules (
    cron_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    next_run_at REAL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cron_schedules_tenant ON cron_schedules (tenant);
CREATE INDEX IF NOT EXISTS cron_schedules_due ON cron_schedules (enabled, next_run_at);
CREATE TABLE IF NOT EXISTS cron_ticks (
    cron_id TEXT NOT NULL,
    tick_at REAL NOT NULL,
    claimed_at REAL NOT NULL,
    PRIMARY KEY (cron_id, tick_at)
);
CREATE INDEX IF NOT EXISTS cron_ticks_age ON cron_ticks (claimed_at);
"""
_UPSERT = "INSERT OR REPLACE INTO cron_schedules (cron_id, tenant, enabled, next_run_at, record) VALUES (?, ?, ?, ?, ?)"


def _row(schedule: Schedule) -> tuple[Any, ...]:
    return (schedule.cron_id, schedule.tenant, int(schedule.enabled), schedule.next_run_at, schedule.to_json())


class SQLiteCronStore(CronStore):
    """Schedules in table ``cron_schedules`` (one JSON column plus the columns ``due`` reads)."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_per_tenant: int = DEFAULT_MAX_PER_TENANT,
        tick_retention_s: float = DEFAULT_TICK_RETENTION_S,
    ) -> None:
        super().__init__(max_per_tenant=max_per_tenant, tick_retention_s=tick_retention_s)
        self.path = path
        self._conn: Any = None
        self._lock = asyncio.Lock()  # one statement or transaction at a time on our connection

    async def _db(self) -> Any:
        if self._conn is None:
            self._conn = await connect_sqlite(self.path, _SCHEMA)
        return self._conn

    async def _select(self, operation: str, sql: str, args: tuple[Any, ...]) -> list[Schedule]:
        async with self._lock:
            rows = await sqlite_fetch(await self._db(), operation, sql, args)
        return [Schedule.from_json(row[0]) for row in rows]

    async def create(self, schedule: Schedule) -> None:
        async with self._lock:
            db = await self._db()
            async with sqlite_transaction(db, "crons.create"):
                async with db.execute(
                    "SELECT count(*) FROM cron_schedules WHERE tenant = ?", (schedule.tenant,)
                ) as cur:
                    (count,) = await cur.fetchone()
                if count >= self.max_per_tenant:
                    raise too_many(schedule.tenant, self.max_per_tenant)
                await db.execute(_UPSERT, _row(schedule))

    async def get(self, cron_id: str, *, tenant: str | None = None) -> Schedule | None:
        found = await self._select("crons.get", "SELECT record FROM cron_schedules WHERE cron_id = ?", (cron_id,))
        return owned(found, tenant)

    async def tenant_schedules(self, tenant: str) -> list[Schedule]:
        return await self._select("crons.list", "SELECT record FROM cron_schedules WHERE tenant = ?", (tenant,))

    async def update(
        self, cron_id: str, *, tenant: str | None = None, match: Mapping[str, Any] | None = None, **changes: Any
    ) -> Schedule | None:
        async with self._lock:
            db = await self._db()
            async with sqlite_transaction(db, "crons.update"):
                async with db.execute("SELECT record FROM cron_schedules WHERE cron_id = ?", (cron_id,)) as cur:
                    row = await cur.fetchone()
                if row is None:
                    return None
                updated = changed(Schedule.from_json(row[0]), tenant, match, changes)
                if updated is None:
                    return None
                await db.execute(_UPSERT, _row(updated))
        return updated

    async def delete(self, cron_id: str, *, tenant: str | None = None) -> bool:
        sql, args = "DELETE FROM cron_schedules WHERE cron_id = ?", [cron_id]
        if tenant is not None:
            sql, args = sql + " AND tenant = ?", [cron_id, tenant]
        async with self._lock:
            db = await self._db()
            async with sqlite_transaction(db, "crons.delete"):
                cur = await db.execute(sql, args)
                gone = bool(cur.rowcount)
                if gone:
                    await db.execute("DELETE FROM cron_ticks WHERE cron_id = ?", (cron_id,))
        return gone

    async def due(self, now: float, limit: int = 100) -> list[Schedule]:
        sql = (
            "SELECT record FROM cron_schedules WHERE enabled = 1 AND next_run_at <= ?"
            " ORDER BY next_run_at, cron_id LIMIT ?"
        )
        return await self._select("crons.due", sql, (now, limit))

    async def claim_tick(self, cron_id: str, tick_at: float, now: float) -> bool:
        async with self._lock:
            db = await self._db()
            async with sqlite_transaction(db, "crons.claim"):
                await db.execute("DELETE FROM cron_ticks WHERE claimed_at < ?", (now - self.tick_retention_s,))
                cur = await db.execute(
                    "INSERT INTO cron_ticks (cron_id, tick_at, claimed_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (cron_id, tick_at) DO NOTHING",
                    (cron_id, tick_at, now),
                )
                return bool(cur.rowcount)

    async def ping(self) -> None:
        async with self._lock:
            await sqlite_ping(await self._db(), "crons.ping")

    async def aclose(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            async with sqlite_errors("crons.close"):
                await conn.close()
