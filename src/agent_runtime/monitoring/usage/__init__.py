"""Usage ledger backends (memory, SQLite, Redis) behind one ABC, and the factory that picks one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_runtime.monitoring.usage.base import (
    GroupBy,
    Period,
    UsageQuery,
    UsageRecord,
    UsageRow,
    UsageStore,
    aggregate,
)
from agent_runtime.monitoring.usage.memory import MemoryUsageStore

if TYPE_CHECKING:
    from agent_runtime.settings import Settings

__all__ = [
    "GroupBy",
    "MemoryUsageStore",
    "Period",
    "UsageQuery",
    "UsageRecord",
    "UsageRow",
    "UsageStore",
    "aggregate",
    "build_usage_store",
]


def build_usage_store(settings: Settings) -> UsageStore:
    """The ledger on ``settings.state_backend``: a dict, the runtime's SQLite file, or shared Redis."""
    if settings.state_backend == "redis":
        from agent_runtime._redis import make_redis
        from agent_runtime.monitoring.usage.redis import RedisUsageStore

        return RedisUsageStore(make_redis(settings.redis_url, settings.redis), prefix=settings.redis.key_prefix)
    if settings.state_backend == "sqlite":
        from agent_runtime.monitoring.usage.sqlite import SqliteUsageStore

        return SqliteUsageStore(settings.sqlite_path)
    return MemoryUsageStore()
