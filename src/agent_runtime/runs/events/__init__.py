"""Run event logs: the streamed events of a run, kept bounded so any process can join or resume it."""

from __future__ import annotations

from agent_runtime.runs.events.base import DEFAULT_MAX_EVENTS, DEFAULT_TTL_S, LoggedEvent, RunEventLog
from agent_runtime.runs.events.memory import MemoryRunEventLog

__all__ = ["DEFAULT_MAX_EVENTS", "DEFAULT_TTL_S", "LoggedEvent", "MemoryRunEventLog", "RunEventLog"]
