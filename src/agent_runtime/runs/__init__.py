"""Runs as durable records: the record, its store per backend, the recorder of foreground runs and the
dispatcher of background runs.

``build_run_records(settings)`` picks the store through ``agent_runtime.backends``. The attempt registry
that lets a reaper close the runs of a dead worker lives in ``orchestration.runs`` for now.
"""

from __future__ import annotations

from agent_runtime.runs.base import DEFAULT_MAX_PER_TENANT, DEFAULT_TTL_S, RunFilter, RunRecordStore
from agent_runtime.runs.dispatcher import Publish, QueueFullError, RunDispatcher
from agent_runtime.runs.memory import MemoryRunRecordStore
from agent_runtime.runs.record import ACTIVE, TERMINAL, Run, RunStatus, status_for_error
from agent_runtime.runs.recorder import BACKGROUND_KEY, RunRecorder
from agent_runtime.settings import Settings

__all__ = [
    "ACTIVE",
    "BACKGROUND_KEY",
    "DEFAULT_MAX_PER_TENANT",
    "DEFAULT_TTL_S",
    "TERMINAL",
    "MemoryRunRecordStore",
    "Publish",
    "QueueFullError",
    "Run",
    "RunDispatcher",
    "RunFilter",
    "RunRecordStore",
    "RunRecorder",
    "RunStatus",
    "build_run_records",
    "status_for_error",
]


def build_run_records(settings: Settings) -> RunRecordStore:
    """The run record store of ``settings`` (see ``agent_runtime.backends``), retention from ``settings.runs``."""
    from agent_runtime.backends import build

    store: RunRecordStore = build("run_records", settings)
    return store
