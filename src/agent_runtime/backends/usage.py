"""Usage ledgers: a ``UsageStore`` per engine."""

from __future__ import annotations

from typing import Any

from agent_runtime.backends._registry import BackendTarget, Builder

__all__ = ["BUILDERS"]


def _memory(target: BackendTarget) -> Any:
    from agent_runtime.monitoring.usage.memory import MemoryUsageStore

    return MemoryUsageStore(**target.extra)


def _sqlite(target: BackendTarget) -> Any:
    from agent_runtime.monitoring.usage.sqlite import SqliteUsageStore

    return SqliteUsageStore(target.url.path, **target.extra)


def _redis(target: BackendTarget) -> Any:
    from agent_runtime._redis import make_redis
    from agent_runtime.monitoring.usage.redis import RedisUsageStore

    cfg = target.settings.redis
    return RedisUsageStore(make_redis(target.url.raw, cfg), prefix=cfg.key_prefix, **target.extra)


def _postgresql(target: BackendTarget) -> Any:
    from agent_runtime.monitoring.usage.postgres import PostgresUsageStore

    return PostgresUsageStore(target.url.raw, target.settings.postgres, **target.extra)


BUILDERS: dict[str, Builder] = {"memory": _memory, "sqlite": _sqlite, "redis": _redis, "postgresql": _postgresql}
