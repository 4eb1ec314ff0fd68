"""PostgreSQL run registry: in-flight attempts of the whole fleet; reapers claim with ``SKIP LOCKED``."""

from __future__ import annotations

from collections.abc import Sequence

from agent_runtime._postgres import PgClient
from agent_runtime.orchestration.runs.base import ABANDONED_RETENTION_S, ChargePolicy, RunRecord, RunStore
from agent_runtime.settings import PostgresSettings

__all__ = ["PostgresRunStore"]

_START = (
    "INSERT INTO ar_run_registry (key, status, heartbeat_at, record) VALUES (%s, 'running', %s, %s::jsonb) "
    "ON CONFLICT (key) DO UPDATE SET status = 'running', heartbeat_at = excluded.heartbeat_at, record = excluded.record"
)


class PostgresRunStore(RunStore):
    """Records in table ``ar_run_registry``; abandoned ones keep a row with ``status = 'abandoned'``."""

    def __init__(self, url: str, settings: PostgresSettings | None = None) -> None:
        self._db = PgClient(url, settings, name="run_registry")

    async def start_many(self, records: Sequence[RunRecord]) -> None:
        if not records:
            return
        async with self._db.transaction("runs.start") as conn:
            await conn.cursor().executemany(_START, [(r.key, r.heartbeat_at, r.to_json()) for r in records])

    async def finish_many(self, keys: Sequence[str]) -> dict[str, RunRecord]:
        if not keys:
            return {}
        async with self._db.transaction("runs.finish") as conn:
            cur = await conn.execute(
                "DELETE FROM ar_run_registry WHERE status = 'running' AND key = ANY(%s) RETURNING key", (list(keys),)
            )
            deleted = {row[0] for row in await cur.fetchall()}
            gone = [key for key in keys if key not in deleted]
            if not gone:
                return {}
            # Those not running any more were claimed by a reaper (abandoned is final) or never stored.
            cur = await conn.execute(
                "SELECT record::text FROM ar_run_registry WHERE status = 'abandoned' AND key = ANY(%s)", (gone,)
            )
            records = [RunRecord.from_json(row[0]) for row in await cur.fetchall()]
        return {record.key: record for record in records}

    async def heartbeat(self, keys: Sequence[str], now: float) -> None:
        if keys:
            sql = "UPDATE ar_run_registry SET heartbeat_at = %s WHERE key = ANY(%s) AND status = 'running'"
            await self._db.execute("runs.heartbeat", sql, (now, list(keys)))

    async def claim_stale(
        self, cutoff: float, now: float, limit: int = 100, *, charge: ChargePolicy = "reserved"
    ) -> list[RunRecord]:
        records: list[RunRecord] = []
        async with self._db.transaction("runs.claim") as conn:
            sql = (
                "SELECT key, heartbeat_at, record::text FROM ar_run_registry WHERE status = 'running'"
                " AND heartbeat_at < %s LIMIT %s FOR UPDATE SKIP LOCKED"
            )
            cur = await conn.execute(sql, (cutoff, limit))
            for key, heartbeat_at, raw in await cur.fetchall():
                record = RunRecord.from_json(raw)
                record.status, record.heartbeat_at, record.charge = "abandoned", heartbeat_at, charge
                records.append(record)
                await conn.execute(
                    "UPDATE ar_run_registry SET status = 'abandoned', heartbeat_at = %s, record = %s::jsonb"
                    " WHERE key = %s",
                    (now, record.to_json(), key),
                )
            await conn.execute(
                "DELETE FROM ar_run_registry WHERE status = 'abandoned' AND heartbeat_at < %s",
                (now - ABANDONED_RETENTION_S,),
            )
        return records

    async def get(self, key: str) -> RunRecord | None:
        rows = await self._db.fetch("runs.get", "SELECT record::text FROM ar_run_registry WHERE key = %s", (key,))
        return RunRecord.from_json(rows[0][0]) if rows else None

    async def ping(self) -> None:
        await self._db.ping("runs.ping")

    async def aclose(self) -> None:
        await self._db.aclose()
