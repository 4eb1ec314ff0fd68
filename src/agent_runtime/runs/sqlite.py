"""SQLite run records: the embedded default. Pending rows are the queue of the process (or the
processes of one host) sharing the file, so a restart picks them up again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from agent_runtime._sqlite import connect_sqlite, sqlite_errors, sqlite_ping, sqlite_transaction
from agent_runtime.runs.base import (
    DEFAULT_MAX_PER_TENANT,
    DEFAULT_TTL_S,
    RunFilter,
    RunRecordStore,
    lease_expired,
    matches,
)
from agent_runtime.runs.record import TERMINAL, Run

__all__ = ["SQLiteRunRecordStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_records (
    run_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL,
    session_id TEXT,
    template TEXT NOT NULL,
    created_at REAL NOT NULL,
    ended_at REAL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_records_tenant ON run_records (tenant, created_at);
CREATE INDEX IF NOT EXISTS run_records_status ON run_records (status, created_at);
CREATE INDEX IF NOT EXISTS run_records_session ON run_records (tenant, session_id, status);
"""
_FINISHED = "(" + ", ".join(f"'{status}'" for status in sorted(TERMINAL)) + ")"
_UPSERT = (
    "INSERT OR REPLACE INTO run_records (run_id, tenant, status, session_id, template, created_at, ended_at, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_PRUNE = (
    f"DELETE FROM run_records WHERE tenant = ? AND status IN {_FINISHED} AND (ended_at < ? OR run_id NOT IN"
    f" (SELECT run_id FROM run_records WHERE tenant = ? AND status IN {_FINISHED}"
    " ORDER BY created_at DESC LIMIT ?))"
)


def _row(run: Run) -> tuple[Any, ...]:
    return (
        run.run_id,
        run.tenant,
        run.status,
        run.session_id,
        run.template,
        run.created_at,
        run.ended_at,
        run.to_json(),
    )


class SQLiteRunRecordStore(RunRecordStore):
    """Records in table ``run_records`` (one JSON column plus the columns the filters read)."""

    def __init__(
        self,
        path: Path | str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_per_tenant: int = DEFAULT_MAX_PER_TENANT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl_s=ttl_s, max_per_tenant=max_per_tenant)
        self.path = path
        self._clock = clock
        self._conn: Any = None
        self._lock = asyncio.Lock()  # one statement or transaction at a time on our connection

    async def _db(self) -> Any:
        if self._conn is None:
            self._conn = await connect_sqlite(self.path, _SCHEMA)
        return self._conn

    async def create(self, run: Run) -> None:
        async with self._lock:
            db = await self._db()
            async with sqlite_transaction(db, "run_records.create"):
                await db.execute(_UPSERT, _row(run))
                cutoff = self._clock() - self.ttl_s
                await db.execute(_PRUNE, (run.tenant, cutoff, run.tenant, self.max_per_tenant))

    async def _select(self, operation: str, sql: str, args: tuple[Any, ...]) -> list[Run]:
        async with self._lock:
            db = await self._db()
            async with sqlite_errors(operation), db.execute(sql, args) as cur:
                rows = await cur.fetchall()
        return [Run.from_json(row[0]) for row in rows]

    def _fresh(self) -> tuple[str, float]:
        return f"(status NOT IN {_FINISHED} OR ended_at IS NULL OR ended_at >= ?)", self._clock() - self.ttl_s

    async def get(self, run_id: str, *, tenant: str | None = None) -> Run | None:
        fresh, cutoff = self._fresh()
        sql = f"SELECT record FROM run_records WHERE run_id = ? AND {fresh}"
        runs = await self._select("run_records.get", sql, (run_id, cutoff))
        if not runs or (tenant is not None and runs[0].tenant != tenant):
            return None
        return runs[0]

    async def find(self, query: RunFilter) -> list[Run]:
        fresh, cutoff = self._fresh()
        where, args = [f"tenant = ? AND {fresh}"], [query.tenant, cutoff]
        for column, value in (("session_id", query.session_id), ("status", query.status), ("template", query.template)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT record FROM run_records WHERE {' AND '.join(where)} ORDER BY created_at DESC LIMIT ? OFFSET ?"
        return await self._select("run_records.list", sql, (*args, query.limit, query.offset))

    async def transition(
        self, run_id: str, expected: Collection[str], *, match: Mapping[str, Any] | None = None, **changes: Any
    ) -> Run | None:
        async with self._lock:
            db = await self._db()
            async with sqlite_transaction(db, "run_records.transition"):
                async with db.execute("SELECT record FROM run_records WHERE run_id = ?", (run_id,)) as cur:
                    row = await cur.fetchone()
                if row is None:
                    return None
                run = Run.from_json(row[0])
                if not matches(run, expected, match):
                    return None
                updated = Run.model_validate(run.model_dump() | changes)
                await db.execute(_UPSERT, _row(updated))
        return updated

    async def active(self, tenant: str, session_id: str) -> list[Run]:
        sql = "SELECT record FROM run_records WHERE tenant = ? AND session_id = ? AND status IN ('pending', 'running')"
        return await self._select("run_records.active", sql, (tenant, session_id))

    async def delete(self, run_id: str) -> bool:
        async with self._lock:
            db = await self._db()
            async with sqlite_transaction(db, "run_records.delete"):
                cur = await db.execute("DELETE FROM run_records WHERE run_id = ?", (run_id,))
                return bool(cur.rowcount)

    async def pending(self, limit: int = 1000) -> list[Run]:
        sql = "SELECT record FROM run_records WHERE status = 'pending' ORDER BY created_at LIMIT ?"
        return await self._select("run_records.pending", sql, (limit,))

    async def expired(self, now: float, limit: int = 100) -> list[Run]:
        # running rows are few (workers x their concurrency): the lease is read from the record itself
        running = await self._select(
            "run_records.expired", "SELECT record FROM run_records WHERE status = 'running'", ()
        )
        found = sorted((r for r in running if lease_expired(r, now)), key=lambda r: r.lease_until or 0.0)
        return found[:limit]

    async def ping(self) -> None:
        async with self._lock:
            await sqlite_ping(await self._db(), "run_records.ping")

    async def aclose(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
