"""SQLite run registry: the embedded default; processes of one host share it through the file."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent_runtime._sqlite import connect_sqlite, sqlite_errors, sqlite_fetch, sqlite_ping, sqlite_transaction
from agent_runtime.orchestration.runs.base import ABANDONED_RETENTION_S, ChargePolicy, RunRecord, RunStore

__all__ = ["SQLiteRunStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    heartbeat_at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_stale ON runs (status, heartbeat_at);
"""


class SQLiteRunStore(RunStore):
    """Records in table ``runs``; abandoned ones keep a row with ``status = 'abandoned'``."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._conn: Any = None
        self._lock = asyncio.Lock()  # one statement or transaction at a time on our connection

    async def _db(self) -> Any:
        if self._conn is None:
            self._conn = await connect_sqlite(self.path, _SCHEMA)
        return self._conn

    async def _write(self, operation: str, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        async with self._lock:
            db = await self._db()
            async with sqlite_transaction(db, operation):
                await db.executemany(sql, rows)

    async def start_many(self, records: Sequence[RunRecord]) -> None:
        sql = "INSERT OR REPLACE INTO runs (key, status, heartbeat_at, record) VALUES (?, 'running', ?, ?)"
        await self._write("runs.start", sql, [(r.key, r.heartbeat_at, r.to_json()) for r in records])

    async def finish_many(self, keys: Sequence[str]) -> dict[str, RunRecord]:
        if not keys:
            return {}
        marks = ", ".join("?" * len(keys))
        async with self._lock:
            db = await self._db()
            async with sqlite_errors("runs.finish"):
                sql = f"DELETE FROM runs WHERE status = 'running' AND key IN ({marks}) RETURNING key"
                async with db.execute(sql, tuple(keys)) as cur:  # one autocommit statement
                    deleted = {row[0] for row in await cur.fetchall()}
                gone = [key for key in keys if key not in deleted]
                if not gone:
                    return {}
                # Those not running any more were claimed by a reaper (abandoned is final) or never stored.
                marks = ", ".join("?" * len(gone))
                sql = f"SELECT record FROM runs WHERE status = 'abandoned' AND key IN ({marks})"
                async with db.execute(sql, tuple(gone)) as found:
                    rows = await found.fetchall()
        records = [RunRecord.from_json(row[0]) for row in rows]
        return {record.key: record for record in records}

    async def heartbeat(self, keys: Sequence[str], now: float) -> None:
        sql = "UPDATE runs SET heartbeat_at = ? WHERE key = ? AND status = 'running'"
        await self._write("runs.heartbeat", sql, [(now, key) for key in keys])

    async def claim_stale(
        self, cutoff: float, now: float, limit: int = 100, *, charge: ChargePolicy = "reserved"
    ) -> list[RunRecord]:
        async with self._lock:
            db = await self._db()
            # BEGIN IMMEDIATE: another process reaping waits, then sees them claimed
            async with sqlite_transaction(db, "runs.claim"):
                sql = "SELECT key, heartbeat_at, record FROM runs WHERE status = 'running' AND heartbeat_at < ?"
                async with db.execute(sql + " LIMIT ?", (cutoff, limit)) as cur:
                    rows = await cur.fetchall()
                records = []
                for key, heartbeat_at, raw in rows:
                    record = RunRecord.from_json(raw)
                    record.status, record.heartbeat_at, record.charge = "abandoned", heartbeat_at, charge
                    records.append(record)
                    await db.execute(
                        "UPDATE runs SET status = 'abandoned', heartbeat_at = ?, record = ? WHERE key = ?",
                        (now, record.to_json(), key),
                    )
                await db.execute(
                    "DELETE FROM runs WHERE status = 'abandoned' AND heartbeat_at < ?",
                    (now - ABANDONED_RETENTION_S,),
                )
        return records

    async def get(self, key: str) -> RunRecord | None:
        async with self._lock:
            db = await self._db()
            rows = await sqlite_fetch(db, "runs.get", "SELECT record FROM runs WHERE key = ?", (key,))
            row = rows[0] if rows else None
        return None if row is None else RunRecord.from_json(row[0])

    async def ping(self) -> None:
        async with self._lock:
            await sqlite_ping(await self._db(), "runs.ping")

    async def aclose(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
