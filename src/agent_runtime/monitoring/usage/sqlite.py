"""Usage ledger in an SQLite file: survives restarts, shared by the processes of one host.

Writes are group-committed: records added while the previous write is in progress go in the next
write together (one ``executemany`` and one commit), and each ``add`` returns once its own record is
committed. Under load this replaces two round trips to SQLite's thread per run by two per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date
from pathlib import Path
from typing import Any

from agent_runtime._sqlite import connect_sqlite, sqlite_errors, sqlite_ping
from agent_runtime.monitoring.usage.base import UsageQuery, UsageRecord, UsageStore

__all__ = ["SqliteUsageStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_ledger (
    tenant TEXT NOT NULL,
    day TEXT NOT NULL,
    user_id TEXT NOT NULL,
    template TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    runs INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, day, user_id, template, model)
)
"""

# One statement, so concurrent writers (other processes included) add to a cell instead of overwriting it.
_UPSERT = """
INSERT INTO usage_ledger (tenant, day, user_id, template, model, input_tokens, output_tokens, cached_tokens,
                          cost_usd, runs)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, day, user_id, template, model) DO UPDATE SET
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cached_tokens = cached_tokens + excluded.cached_tokens,
    cost_usd = cost_usd + excluded.cost_usd,
    runs = runs + excluded.runs
"""


class SqliteUsageStore(UsageStore):
    """The ledger in table ``usage_ledger`` of ``path`` (may be the runtime's shared database file)."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._conn: Any = None
        self._open_lock = asyncio.Lock()
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def _connection(self) -> Any:
        if self._conn is None:
            async with self._open_lock:
                if self._conn is None:
                    conn = await connect_sqlite(self.path)
                    async with sqlite_errors("usage.init"):
                        await conn.execute(_SCHEMA)
                        await conn.commit()
                    self._conn = conn
        return self._conn

    async def _add(self, record: UsageRecord) -> None:
        params = (
            record.tenant,
            record.day.isoformat(),
            record.user,
            record.template,
            record.model,
            record.input_tokens,
            record.output_tokens,
            record.cached_tokens,
            record.cost_usd,
            record.runs,
        )
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queued.append((params, done))
        writer = self._writer
        if writer is None or writer.done() or writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_queued(), name="agent-runtime-usage-writer")
        await done  # if this is cancelled, the record is still written

    async def _write_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                conn = await self._connection()
                async with sqlite_errors("usage.add"):
                    try:
                        await conn.executemany(_UPSERT, [params for params, _ in batch])
                        await conn.commit()
                    except BaseException:
                        with contextlib.suppress(Exception):
                            await conn.rollback()
                        raise
            except asyncio.CancelledError:  # shutting down: the batch's fate is unknown to its callers
                for _, done in batch:
                    done.cancel()
                raise
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _scan(self, query: UsageQuery) -> list[UsageRecord]:
        conn = await self._connection()
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("tenant", query.tenant), ("user_id", query.user)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.since is not None:
            where.append("day >= ?")
            params.append(query.since.isoformat())
        if query.until is not None:
            where.append("day <= ?")
            params.append(query.until.isoformat())
        sql = "SELECT * FROM usage_ledger" + (" WHERE " + " AND ".join(where) if where else "")
        async with sqlite_errors("usage.scan"), conn.execute(sql, params) as cursor:
            rows = await cursor.fetchall()
        return [
            UsageRecord(
                tenant=row["tenant"],
                user=row["user_id"],
                template=row["template"],
                model=row["model"],
                day=date.fromisoformat(row["day"]),
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                cached_tokens=row["cached_tokens"],
                cost_usd=row["cost_usd"],
                runs=row["runs"],
            )
            for row in rows
        ]

    async def ping(self) -> None:
        await sqlite_ping(await self._connection(), "usage.ping")

    async def aclose(self) -> None:
        writer = self._writer
        if writer is not None and not writer.done() and writer.get_loop() is asyncio.get_running_loop():
            await writer  # the records already added
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
