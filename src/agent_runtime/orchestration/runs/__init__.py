"""The run registry: which run attempts are in flight where, so the runs of a dead worker get closed.

Attempts are registered in batches, after a short flush interval (see tracker.py for the trade-off).

Backends: memory, SQLite and Redis, following ``settings.state_backend``;
``build_run_store(settings)`` picks one.
"""

from __future__ import annotations

from agent_runtime.errors import ConfigurationError
from agent_runtime.orchestration.runs.base import ChargePolicy, RunRecord, RunStatus, RunStore
from agent_runtime.orchestration.runs.memory import MemoryRunStore
from agent_runtime.orchestration.runs.tracker import AbandonedHook, RunReaper, RunTracker
from agent_runtime.settings import Settings

__all__ = [
    "AbandonedHook",
    "ChargePolicy",
    "MemoryRunStore",
    "RunReaper",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "RunTracker",
    "build_run_store",
]


def build_run_store(settings: Settings) -> RunStore:
    """The run store of ``settings.state_backend``."""
    backend = settings.state_backend
    if backend == "memory":
        return MemoryRunStore()
    if backend == "sqlite":
        from agent_runtime.orchestration.runs.sqlite import SQLiteRunStore

        return SQLiteRunStore(settings.sqlite_path)
    if backend == "redis":
        from agent_runtime.orchestration.runs.redis import RedisRunStore

        return RedisRunStore(settings.redis_url, settings.redis)
    raise ConfigurationError(f"unknown state backend {backend!r}")
