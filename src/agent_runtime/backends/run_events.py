"""Run event logs (``agent_runtime.runs.events``): a ``RunEventLog`` per engine, bounds from ``settings.runs``."""

from __future__ import annotations

from typing import Any

from agent_runtime.backends._registry import BackendTarget, Builder

__all__ = ["BUILDERS"]


def _bounds(target: BackendTarget) -> dict[str, Any]:
    runs = target.settings.runs
    return {"ttl_s": runs.events_ttl_s, "max_events": runs.max_events_per_run}


def _memory(target: BackendTarget) -> Any:
    from agent_runtime.runs.events.memory import MemoryRunEventLog

    return MemoryRunEventLog(**_bounds(target) | target.extra)


BUILDERS: dict[str, Builder] = {"memory": _memory, "sqlite": _memory, "redis": _memory, "postgresql": _memory}
