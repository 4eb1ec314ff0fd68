"""Run event logs (``agent_runtime.runs.events``): a ``RunEventLog`` per engine, bounds from ``settings.runs``.

SQLite keeps them in ``run_events.sqlite3`` beside the state database (the processes of one host
share it), Redis in one stream per run, PostgreSQL in two tables: any worker of a fleet on those can
join any run's stream.
"""

from __future__ import annotations

from typing import Any

from agent_runtime.backends._registry import BackendTarget, Builder

__all__ = ["BUILDERS"]


def _bounds(target: BackendTarget) -> dict[str, Any]:
    runs = target.settings.runs
    return {"ttl_s": runs.events_ttl_s, "max_events": runs.max_events_per_run}


def _memory(target: BackendTarget) -> Any:
    from agent_runtime.runs.events.memory import MemoryRunEventLog

    return MemoryRunEventLog(**_bounds(target) | target.extra)


def _sqlite(target: BackendTarget) -> Any:
    from agent_runtime.runs.events.sqlite import SQLiteRunEventLog

    # a file of its own beside the state database: a run appends every token, and those writes would
    # otherwise queue for the one write lock with every run record, key and session write of the host
    return SQLiteRunEventLog(target.url.sibling("run_events.sqlite3"), **_bounds(target) | target.extra)


def _redis(target: BackendTarget) -> Any:
    from agent_runtime.runs.events.redis import RedisRunEventLog

    client = target.options.get("redis_client")
    return RedisRunEventLog(target.url.raw, target.settings.redis, client=client, **_bounds(target) | target.extra)


def _postgresql(target: BackendTarget) -> Any:
    from agent_runtime.runs.events.postgres import PostgresRunEventLog

    return PostgresRunEventLog(target.url.raw, target.settings.postgres, **_bounds(target) | target.extra)


BUILDERS: dict[str, Builder] = {"memory": _memory, "sqlite": _sqlite, "redis": _redis, "postgresql": _postgresql}
