"""Cron schedules (``agent_runtime.crons``): a ``CronStore`` per engine, bounds from ``settings.crons``."""

from __future__ import annotations

from typing import Any

from agent_runtime.backends._registry import BackendTarget, Builder

__all__ = ["BUILDERS"]


def _bounds(target: BackendTarget) -> dict[str, Any]:
    return {"max_per_tenant": target.settings.crons.max_per_tenant} | target.extra


def _memory(target: BackendTarget) -> Any:
    from agent_runtime.crons.memory import MemoryCronStore

    return MemoryCronStore(**_bounds(target))


def _sqlite(target: BackendTarget) -> Any:
    from agent_runtime.crons.sqlite import SQLiteCronStore

    return SQLiteCronStore(target.url.path, **_bounds(target))


def _redis(target: BackendTarget) -> Any:
    from agent_runtime.crons.redis import RedisCronStore

    return RedisCronStore(target.url.raw, target.settings.redis, **_bounds(target))


def _postgresql(target: BackendTarget) -> Any:
    from agent_runtime.crons.postgres import PostgresCronStore

    return PostgresCronStore(target.url.raw, target.settings.postgres, **_bounds(target))


BUILDERS: dict[str, Builder] = {"memory": _memory, "sqlite": _sqlite, "redis": _redis, "postgresql": _postgresql}
