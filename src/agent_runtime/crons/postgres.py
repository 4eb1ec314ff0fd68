"""PostgreSQL schedules, shared by a fleet (tables of migration 4, ``_pg_schema``).

``create`` counts the tenant's schedules under a transaction-scoped advisory lock of that tenant, so two
concurrent creates cannot both pass the cap; ``update`` is a row-locked compare-and-set; a tick is
claimed by ``INSERT ... ON CONFLICT DO NOTHING`` on the primary key ``(cron_id, tick_at)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_runtime._postgres import PgClient
from agent_runtime.crons.base import (
    DEFAULT_MAX_PER_TENANT,
    DEFAULT_TICK_RETENTION_S,
    CronStore,
    changed,
    owned,
    too_many,
)
from agent_runtime.crons.schedule import Schedule
from agent_runtime.settings import PostgresSettings

__all__ = ["PostgresCronStore"]

_UPSERT = (
    "INSERT INTO ar_cron_schedules (cron_id, tenant, enabled, next_run_at, record) VALUES (%s, %s, %s, %s, %s::jsonb)"
    " ON CONFLICT (cron_id) DO UPDATE SET tenant = excluded.tenant, enabled = excluded.enabled,"
    " next_run_at = excluded.next_run_at, record = excluded.record"
)


def _row(schedule: Schedule) -> tuple[Any, ...]:
    return (schedule.cron_id, schedule.tenant, schedule.enabled, schedule.next_run_at, schedule.to_json())


class PostgresCronStore(CronStore):
    """Schedules in table ``ar_cron_schedules`` (one JSON column plus the columns ``due`` reads)."""

    def __init__(
        self,
        url: str,
        settings: PostgresSettings | None = None,
        *,
        max_per_tenant: int = DEFAULT_MAX_PER_TENANT,
        tick_retention_s: float = DEFAULT_TICK_RETENTION_S,
    ) -> None:
        super().__init__(max_per_tenant=max_per_tenant, tick_retention_s=tick_retention_s)
        self._db = PgClient(url, settings, name="crons")

    async def _select(self, operation: str, sql: str, args: tuple[Any, ...]) -> list[Schedule]:
        rows = await self._db.fetch(operation, sql, args)
        return [Schedule.from_json(row[0]) for row in rows]

    async def create(self, schedule: Schedule) -> None:
        async with self._db.transaction("crons.create") as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ar_crons:' || %s))", (schedule.tenant,))
            cur = await conn.execute("SELECT count(*) FROM ar_cron_schedules WHERE tenant = %s", (schedule.tenant,))
            row = await cur.fetchone()
            if row is not None and row[0] >= self.max_per_tenant:
                raise too_many(schedule.tenant, self.max_per_tenant)
            await conn.execute(_UPSERT, _row(schedule))

    async def get(self, cron_id: str, *, tenant: str | None = None) -> Schedule | None:
        sql = "SELECT record::text FROM ar_cron_schedules WHERE cron_id = %s"
        found = await self._select("crons.get", sql, (cron_id,))
        return owned(found, tenant)

    async def tenant_schedules(self, tenant: str) -> list[Schedule]:
        return await self._select(
            "crons.list", "SELECT record::text FROM ar_cron_schedules WHERE tenant = %s", (tenant,)
        )

    async def update(
        self, cron_id: str, *, tenant: str | None = None, match: Mapping[str, Any] | None = None, **changes: Any
    ) -> Schedule | None:
        async with self._db.transaction("crons.update") as conn:
            sql = "SELECT record::text FROM ar_cron_schedules WHERE cron_id = %s FOR UPDATE"
            cur = await conn.execute(sql, (cron_id,))
            row = await cur.fetchone()
            if row is None:
                return None
            updated = changed(Schedule.from_json(row[0]), tenant, match, changes)
            if updated is None:
                return None
            await conn.execute(_UPSERT, _row(updated))
        return updated

    async def delete(self, cron_id: str, *, tenant: str | None = None) -> bool:
        sql, args = "DELETE FROM ar_cron_schedules WHERE cron_id = %s", [cron_id]
        if tenant is not None:
            sql, args = sql + " AND tenant = %s", [cron_id, tenant]
        async with self._db.transaction("crons.delete") as conn:
            cur = await conn.execute(sql, args)
            gone = bool(cur.rowcount)
            if gone:
                await conn.execute("DELETE FROM ar_cron_ticks WHERE cron_id = %s", (cron_id,))
        return gone

    async def due(self, now: float, limit: int = 100) -> list[Schedule]:
        sql = (
            "SELECT record::text FROM ar_cron_schedules WHERE enabled AND next_run_at <= %s"
            " ORDER BY next_run_at, cron_id LIMIT %s"
        )
        return await self._select("crons.due", sql, (now, limit))

    async def claim_tick(self, cron_id: str, tick_at: float, now: float) -> bool:
        async with self._db.transaction("crons.claim") as conn:
            await conn.execute("DELETE FROM ar_cron_ticks WHERE claimed_at < %s", (now - self.tick_retention_s,))
            cur = await conn.execute(
                "INSERT INTO ar_cron_ticks (cron_id, tick_at, claimed_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (cron_id, tick_at) DO NOTHING",
                (cron_id, tick_at, now),
            )
            return bool(cur.rowcount)

    async def ping(self) -> None:
        await self._db.ping("crons.ping")

    async def aclose(self) -> None:
        await self._db.aclose()
