"""Quota ledgers: a ``QuotaLedger`` per engine."""

from __future__ import annotations

from typing import Any

from agent_runtime.backends._registry import BackendTarget, Builder

__all__ = ["BUILDERS"]


def _memory(target: BackendTarget) -> Any:
    from agent_runtime.limits.quota.memory import MemoryQuotaLedger

    return MemoryQuotaLedger(**target.extra)


def _sqlite(target: BackendTarget) -> Any:
    """In a file of its own: the ledger's inline transactions (see ``_sqlite``) must never wait for a
    write lock that an aiosqlite connection of this same process holds across an await."""
    from agent_runtime.limits.quota.sqlite import SQLiteQuotaLedger

    return SQLiteQuotaLedger(target.url.sibling("quotas.sqlite3"), **target.extra)


def _redis(target: BackendTarget) -> Any:
    from agent_runtime.limits.quota.redis import RedisQuotaLedger

    return RedisQuotaLedger(
        target.url.raw, target.settings.redis, client=target.options.get("redis_client"), **target.extra
    )


def _postgresql(target: BackendTarget) -> Any:
    from agent_runtime.limits.quota.postgres import PostgresQuotaLedger

    return PostgresQuotaLedger(target.url.raw, target.settings.postgres, **target.extra)


BUILDERS: dict[str, Builder] = {"memory": _memory, "sqlite": _sqlite, "redis": _redis, "postgresql": _postgresql}
