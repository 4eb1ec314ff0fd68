"""API keys: a ``KeyStore`` per engine."""

from __future__ import annotations

from typing import Any

from agent_runtime.backends._registry import BackendTarget, Builder

__all__ = ["BUILDERS"]


def _memory(target: BackendTarget) -> Any:
    from agent_runtime.security.memory import MemoryKeyStore

    return MemoryKeyStore(**target.extra)


def _sqlite(target: BackendTarget) -> Any:
    from agent_runtime.security.sqlite import SQLiteKeyStore

    return SQLiteKeyStore(target.url.path, **target.extra)


def _redis(target: BackendTarget) -> Any:
    from agent_runtime.security.redis import RedisKeyStore

    return RedisKeyStore(
        target.url.raw, target.settings.redis, client=target.options.get("redis_client"), **target.extra
    )


def _postgresql(target: BackendTarget) -> Any:
    from agent_runtime.security.postgres import PostgresKeyStore

    return PostgresKeyStore(target.url.raw, target.settings.postgres, **target.extra)


BUILDERS: dict[str, Builder] = {"memory": _memory, "sqlite": _sqlite, "redis": _redis, "postgresql": _postgresql}
