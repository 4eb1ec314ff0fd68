"""PostgreSQL run records: shared by a fleet; ``transition`` is a row-locked compare-and-set.

Pending rows are the fleet's queue. ``claim_pending`` (for a dispatcher that pulls work) takes the
oldest pending runs with ``FOR UPDATE SKIP LOCKED``, so two workers never pick the same run and
neither waits for the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from agent_runtime._postgres import PgClient
from agent_runtime.runs.base import (
    DEFAULT_MAX_PER_TENANT,
    DEFAULT_TTL_S,
    RunFilter,
    RunRecordStore,
    lease_expired,
    matches,
)
from agent_runtime.runs.record import TERMINAL, Run
from agent_runtime.settings import PostgresSettings

__all__ = ["PostgresRunRecordStore"]

_FINISHED = list(sorted(TERMINAL))
_UPSERT = (
    "INSERT INTO ar_run_records (run_id, tenant, status, session_id, template, created_at, ended_at, record)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT (run_id) DO UPDATE SET tenant = excluded.tenant,"
    " status = excluded.status, session_id = excluded.session_id, template = excluded.template,"
    " created_at = excluded.created_at, ended_at = excluded.ended_at, record = excluded.record"
)
_PRUNE = (
    "DELETE FROM ar_run_records WHERE tenant = %(tenant)s AND status = ANY(%(finished)s) AND (ended_at < %(cutoff)s"
    " OR run_id NOT IN (SELECT run_id FROM ar_run_records WHERE tenant = %(tenant)s AND status = ANY(%(finished)s)"
    " ORDER BY created_at DESC LIMIT %(cap)s))"
)
_FRESH = "(NOT (status = ANY(%s)) OR ended_at IS NULL OR ended_at >= %s)"


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


class PostgresRunRecordStore(RunRecordStore):
    """Records in table ``ar_run_records`` (one JSON column plus the columns the filters read)."""

    def __init__(
        self,
        url: str,
        settings: PostgresSettings | None = None,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_per_tenant: int = DEFAULT_MAX_PER_TENANT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl_s=ttl_s, max_per_tenant=max_per_tenant)
        self._db = PgClient(url, settings, name="run_records")
        self._clock = clock

    async def create(self, run: Run) -> None:
        cutoff = self._clock() - self.ttl_s
        async with self._db.transaction("run_records.create") as conn:
            await conn.execute(_UPSERT, _row(run))
            prune = {"tenant": run.tenant, "finished": _FINISHED, "cutoff": cutoff, "cap": self.max_per_tenant}
            await conn.execute(_PRUNE, prune)

    async def _select(self, operation: str, sql: str, args: tuple[Any, ...]) -> list[Run]:
        rows = await self._db.fetch(operation, sql, args)
        return [Run.from_json(row[0]) for row in rows]

    async def get(self, run_id: str, *, tenant: str | None = None) -> Run | None:
        sql = f"SELECT record::text FROM ar_run_records WHERE run_id = %s AND {_FRESH}"
        runs = await self._select("run_records.get", sql, (run_id, _FINISHED, self._clock() - self.ttl_s))
        if not runs or (tenant is not None and runs[0].tenant != tenant):
            return None
        return runs[0]

    async def find(self, query: RunFilter) -> list[Run]:
        where, args = [f"tenant = %s AND {_FRESH}"], [query.tenant, _FINISHED, self._clock() - self.ttl_s]
        for column, value in (("session_id", query.session_id), ("status", query.status), ("template", query.template)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        sql = (
            f"SELECT record::text FROM ar_run_records WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC LIMIT %s OFFSET %s"
        )
        return await self._select("run_records.list", sql, (*args, query.limit, query.offset))

    async def transition(
        self, run_id: str, expected: Collection[str], *, match: Mapping[str, Any] | None = None, **changes: Any
    ) -> Run | None:
        async with self._db.transaction("run_records.transition") as conn:
            cur = await conn.execute("SELECT record::text FROM ar_run_records WHERE run_id = %s FOR UPDATE", (run_id,))
            row = await cur.fetchone()
            if row is None:
                return None
            run = Run.from_json(row[0])
            if not matches(run, expected, match):
                return None
            updated = Run.model_validate(run.model_dump() | changes)
            await conn.execute(_UPSERT, _row(updated))
        return updated

    async def active(self, tenant: str, session_id: str) -> list[Run]:
        sql = (
            "SELECT record::text FROM ar_run_records WHERE tenant = %s AND session_id = %s"
            " AND status IN ('pending', 'running')"
        )
        return await self._select("run_records.active", sql, (tenant, session_id))

    async def delete(self, run_id: str) -> bool:
        sql = "DELETE FROM ar_run_records WHERE run_id = %s"
        return bool(await self._db.execute("run_records.delete", sql, (run_id,)))

    async def pending(self, limit: int = 1000) -> list[Run]:
        sql = "SELECT record::text FROM ar_run_records WHERE status = 'pending' ORDER BY created_at LIMIT %s"
        return await self._select("run_records.pending", sql, (limit,))

    async def expired(self, now: float, limit: int = 100) -> list[Run]:
        # running rows are few (workers x their concurrency): the lease is read from the record itself
        sql = "SELECT record::text FROM ar_run_records WHERE status = 'running'"
        running = await self._select("run_records.expired", sql, ())
        found = sorted((r for r in running if lease_expired(r, now)), key=lambda r: r.lease_until or 0.0)
        return found[:limit]

    async def claim_pending(self, limit: int, **changes: Any) -> list[Run]:
        """Move up to ``limit`` of the oldest pending runs to ``changes`` (e.g. ``status="running"``), skipping
        rows another worker is claiming right now; the claimed runs."""
        claimed: list[Run] = []
        async with self._db.transaction("run_records.claim") as conn:
            sql = (
                "SELECT record::text FROM ar_run_records WHERE status = 'pending' ORDER BY created_at"
                " LIMIT %s FOR UPDATE SKIP LOCKED"
            )
            cur = await conn.execute(sql, (limit,))
            for (raw,) in await cur.fetchall():
                updated = Run.model_validate(Run.from_json(raw).model_dump() | changes)
                await conn.execute(_UPSERT, _row(updated))
                claimed.append(updated)
        return claimed

    async def ping(self) -> None:
        await self._db.ping("run_records.ping")

    async def aclose(self) -> None:
        await self._db.aclose()
