"""Hooks the executor calls around every run: metrics and the event bus plug in here.

Observers are called synchronously on the hot path, so they must be cheap and must never raise into
the run: the executor logs and counts an observer's exception and carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.types import AgentContext, AgentResult, ToolCallRecord

__all__ = ["ObserverGroup", "RunObserver"]

log = logging.getLogger("agent_runtime.observers")


@runtime_checkable
class RunObserver(Protocol):
    def run_started(self, context: AgentContext) -> None: ...

    def run_finished(self, context: AgentContext, result: AgentResult) -> None: ...

    def run_failed(self, context: AgentContext, error: AgentRuntimeError, duration_s: float) -> None: ...

    def tool_called(self, context: AgentContext, call: ToolCallRecord) -> None: ...


class ObserverGroup:
    """Fans a notification out to every observer, isolating their failures."""

    def __init__(self, observers: Sequence[RunObserver] = ()) -> None:
        self.observers = list(observers)
        self.failures = 0

    def add(self, observer: RunObserver) -> None:
        self.observers.append(observer)

    def _each(self, method: str, *args: object) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception:
                self.failures += 1
                log.exception("observer %s.%s failed", type(observer).__name__, method)

    def run_started(self, context: AgentContext) -> None:
        if self.observers:
            self._each("run_started", context)

    def run_finished(self, context: AgentContext, result: AgentResult) -> None:
        if self.observers:
            self._each("run_finished", context, result)
            for call in result.tool_calls:
                self._each("tool_called", context, call)

    def run_failed(self, context: AgentContext, error: AgentRuntimeError, duration_s: float) -> None:
        if self.observers:
            self._each("run_failed", context, error, duration_s)
