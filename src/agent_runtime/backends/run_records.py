"""Run records (``agent_runtime.runs``): a ``RunRecordStore`` per engine, retention from ``settings.runs``."""

from __future__ import annotations

from typing import Any

from agent_runtime.backends._registry import BackendTarget, Builder

__all__ = ["BUILDERS"]


def _retention(target: BackendTarget) -> dict[str, Any]:
    runs = target.settings.runs
    return {"ttl_s": runs.retention_s, "max_per_tenant": runs.max_runs_per_tenant}


def _memory(target: BackendTarget) -> Any:
    from agent_runtime.runs.memory import MemoryRunRecordStore

    return MemoryRunRecordStore(**_retention(target) | target.extra)


def _sqlite(target: BackendTarget) -> Any:
    from agent_runtime.runs.sqlite import SQLiteRunRecordStore

    return SQLiteRunRecordStore(target.url.path, **_retention(target) | target.extra)


def _redis(target: BackendTarget) -> Any:
    from agent_runtime.runs.redis import RedisRunRecordStore

    return RedisRunRecordStore(target.url.raw, target.settings.redis, **_retention(target) | target.extra)


def _postgresql(target: BackendTarget) -> Any:
    from agent_runtime.runs.postgres import PostgresRunRecordStore

    return PostgresRunRecordStore(target.url.raw, target.settings.postgres, **_retention(target) | target.extra)


BUILDERS: dict[str, Builder] = {"memory": _memory, "sqlite": _sqlite, "redis": _redis, "postgresql": _postgresql}
