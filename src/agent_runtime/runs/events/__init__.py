"""Run event logs: the streamed events of a run, kept bounded so any process can join or resume it.

``build_run_events(settings)`` picks the backend through ``agent_runtime.backends`` (family ``run_events``).
"""

from __future__ import annotations

from agent_runtime.runs.events.base import DEFAULT_MAX_EVENTS, DEFAULT_TTL_S, LoggedEvent, RunEventLog
from agent_runtime.runs.events.memory import MemoryRunEventLog
from agent_runtime.settings import Settings

__all__ = [
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_TTL_S",
    "LoggedEvent",
    "MemoryRunEventLog",
    "RunEventLog",
    "build_run_events",
]


def build_run_events(settings: Settings) -> RunEventLog:
    """The run event log of ``settings``, bounded by ``settings.runs.events_ttl_s`` / ``max_events_per_run``."""
    from agent_runtime.backends import build

    log: RunEventLog = build("run_events", settings)
    return log
