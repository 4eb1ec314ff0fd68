"""The run registry (``agent_runtime.orchestration.runs``: in-flight attempts, for the reaper)."""

from __future__ import annotations

from typing import Any

from agent_runtime.backends._registry import BackendTarget, Builder

__all__ = ["BUILDERS"]


def _memory(target: BackendTarget) -> Any:
    from agent_runtime.orchestration.runs.memory import MemoryRunStore

    return MemoryRunStore(**target.extra)


def _sqlite(target: BackendTarget) -> Any:
    from agent_runtime.orchestration.runs.sqlite import SQLiteRunStore

    return SQLiteRunStore(target.url.path, **target.extra)


def _redis(target: BackendTarget) -> Any:
    from agent_runtime.orchestration.runs.redis import RedisRunStore

    return RedisRunStore(target.url.raw, target.settings.redis, **target.extra)


def _postgresql(target: BackendTarget) -> Any:
    from agent_runtime.orchestration.runs.postgres import PostgresRunStore

    return PostgresRunStore(target.url.raw, target.settings.postgres, **target.extra)


BUILDERS: dict[str, Builder] = {"memory": _memory, "sqlite": _sqlite, "redis": _redis, "postgresql": _postgresql}
