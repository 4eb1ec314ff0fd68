"""PostgreSQL usage ledger: one row per model per run attempt, idempotent by the journal's op id.

Rows are never updated: ``add`` is one ``INSERT ... ON CONFLICT (op_id) DO NOTHING``, so a journal
entry replayed after a crash (or applied by two workers of a host) counts once, and the ledger is
an audit trail to query with plain SQL (schema: ``_pg_schema``, table ``ar_usage``). Reports sum
the rows per ``(tenant, day, user, template, model)`` cell, like the other backends' counters.
A record added without an op id (no journal in front) gets a random one.
"""

from __future__ import annotations

import uuid
from typing import Any

from agent_runtime._postgres import PgClient
from agent_runtime.monitoring.usage.base import UsageQuery, UsageRecord, UsageStore
from agent_runtime.settings import PostgresSettings

__all__ = ["PostgresUsageStore"]

_INSERT = """
INSERT INTO ar_usage (op_id, run_id, attempt, tenant, user_id, template, model, day, input_tokens, output_tokens,
                      cached_tokens, cost_usd, runs)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (op_id) DO NOTHING
"""
_SCAN = """
SELECT tenant, day, user_id, template, model, sum(input_tokens), sum(output_tokens), sum(cached_tokens),
       sum(cost_usd), sum(runs)
FROM ar_usage WHERE {where} GROUP BY tenant, day, user_id, template, model
"""


def _run_of(op_id: str) -> tuple[str | None, int | None]:
    """``<run_id>:<attempt>:<kind>:<index>`` (the accounting journal's) -> run id and attempt."""
    parts = op_id.rsplit(":", 3)
    if len(parts) == 4 and parts[1].isdigit():
        return parts[0], int(parts[1])
    return None, None


class PostgresUsageStore(UsageStore):
    """The ledger in table ``ar_usage``."""

    def __init__(self, url: str, settings: PostgresSettings | None = None) -> None:
        self._db = PgClient(url, settings, name="usage")

    async def _add(self, record: UsageRecord, op_id: str | None) -> None:
        op_id = op_id or f"direct:{uuid.uuid4().hex}"
        run_id, attempt = _run_of(op_id)
        r = record
        args = (op_id, run_id, attempt, r.tenant, r.user, r.template, r.model, r.day)
        counters = (r.input_tokens, r.output_tokens, r.cached_tokens, r.cost_usd, r.runs)
        await self._db.execute("usage.add", _INSERT, (*args, *counters))

    async def _scan(self, query: UsageQuery) -> list[UsageRecord]:
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        for clause, value in (
            ("tenant = %s", query.tenant),
            ("user_id = %s", query.user),
            ("day >= %s", query.since),
            ("day <= %s", query.until),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = await self._db.fetch("usage.scan", _SCAN.format(where=" AND ".join(where)), params)
        return [
            UsageRecord(
                tenant=tenant,
                day=day,
                user=user,
                template=template,
                model=model,
                input_tokens=int(inp),
                output_tokens=int(out),
                cached_tokens=int(cached),
                cost_usd=float(cost),
                runs=int(runs),
            )
            for tenant, day, user, template, model, inp, out, cached, cost, runs in rows
        ]

    async def ping(self) -> None:
        await self._db.ping("usage.ping")

    async def aclose(self) -> None:
        await self._db.aclose()
