"""Usage ledger in an SQLite file: survives restarts, shared by the processes of one host."""

from __future__ import annotations

import asyncio
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
        conn = await self._connection()
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
        async with sqlite_errors("usage.add"):
            await conn.execute(_UPSERT, params)
            await conn.commit()

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
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
