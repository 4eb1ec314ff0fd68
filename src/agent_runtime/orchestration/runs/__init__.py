"""The run registry: which run attempts are in flight where, so the runs of a dead worker get closed.

Attempts are registered in batches, after a short flush interval (see tracker.py for the trade-off).

Backends: memory, SQLite, Redis and PostgreSQL; ``build_run_store(settings)`` picks one through
``agent_runtime.backends``.
"""

from __future__ import annotations

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
    """The run registry of ``settings`` (see ``agent_runtime.backends``)."""
    from agent_runtime.backends import build

    store: RunStore = build("run_registry", settings)
    return store
