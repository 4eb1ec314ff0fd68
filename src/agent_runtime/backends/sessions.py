"""Sessions (with their LangGraph checkpointer): a ``SessionStore`` per engine."""

from __future__ import annotations

from typing import Any

from agent_runtime.backends._registry import BackendTarget, Builder

__all__ = ["BUILDERS"]


def _memory(target: BackendTarget) -> Any:
    from agent_runtime.sessions.memory import MemorySessionStore

    return MemorySessionStore(**target.extra)


def _sqlite(target: BackendTarget) -> Any:
    from agent_runtime.sessions.sqlite import SqliteSessionStore

    return SqliteSessionStore(
        target.url.path, checkpoint_path=target.url.sibling("checkpoints.sqlite3"), **target.extra
    )


def _redis(target: BackendTarget) -> Any:
    from agent_runtime.sessions.redis import RedisSessionStore

    return RedisSessionStore(target.url.raw, target.settings.redis, **target.extra)


def _postgresql(target: BackendTarget) -> Any:
    from agent_runtime.sessions.postgres import PostgresSessionStore

    return PostgresSessionStore(target.url.raw, target.settings.postgres, **target.extra)


BUILDERS: dict[str, Builder] = {"memory": _memory, "sqlite": _sqlite, "redis": _redis, "postgresql": _postgresql}
