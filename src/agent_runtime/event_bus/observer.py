"""``EventObserver``: the executor's runs (and the session manager's sessions) as catalogue events.

The observer sits on the run's hot path, so a notification only snapshots a few fields into a
buffer (about a microsecond); building the envelopes and handing them to ``SafePublisher`` happens
in one loop callback after the current step. Publishing never fails a run: a full backlog or a
broken bus is counted as lost by the publisher.

Causality: a run started by a trigger carries ``context.metadata["trigger"]`` (see ``TriggerCause``);
its events get ``depth = cause depth + 1`` and the cause's correlation id, which is what the trigger
handler's loop protection reads.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final, TypedDict

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.event_bus.events import CATALOGUE, Event, EventType
from agent_runtime.event_bus.publisher import SafePublisher
from agent_runtime.types import AgentContext, AgentResult, ToolCallRecord

__all__ = ["MAX_OUTPUT_CHARS", "TRIGGER_KEY", "EventObserver", "TriggerCause", "cause_of"]

log = logging.getLogger("agent_runtime.event_bus")

TRIGGER_KEY: Final = "trigger"
"""``AgentContext.metadata`` key holding the ``TriggerCause`` of a triggered run."""

MAX_OUTPUT_CHARS: Final = 100_000
"""``run.completed`` carries at most this much output (``output_truncated`` says when cut)."""

_MAX_MESSAGE_CHARS: Final = 2_000
_MAX_BUFFER: Final = 10_000


class TriggerCause(TypedDict):
    """What ``metadata["trigger"]`` holds: the event that started the run, and the rule that fired."""

    event_id: str
    event_type: str
    rule: str
    depth: int
    """Depth of the causing event; the run's own events get ``depth + 1``."""
    correlation_id: str
    """The causing event's correlation id (its own id when it had none)."""


def cause_of(context: AgentContext) -> tuple[int, str | None]:
    """``(depth, correlation id)`` for the events of this run; malformed metadata counts as no cause."""
    cause = context.metadata.get(TRIGGER_KEY)
    if isinstance(cause, dict):
        depth, correlation = cause.get("depth"), cause.get("correlation_id")
        if type(depth) is int and depth >= 0 and isinstance(correlation, str):
            return depth + 1, correlation
    return 0, None


# (type, tenant, run_id, correlation_id, depth, payload)
_Pending = tuple[str, str | None, str | None, str | None, int, dict[str, Any]]


class EventObserver:
    """A ``RunObserver`` publishing ``run.*``, ``tool.called``, ``quota.exceeded``, ``ratelimit.rejected``.

    Args:
        publisher: the never-failing publisher; its ``lost`` counter covers this observer's losses.
        source: the envelope's ``source`` field.
    """

    def __init__(self, publisher: SafePublisher, *, source: str = "agent-runtime") -> None:
        self.publisher = publisher
        self.source = source
        self._buffer: list[_Pending] = []
        self._scheduled = False
        self._closed = False

    # -- RunObserver --------------------------------------------------------------------------------
    def run_started(self, context: AgentContext) -> None:
        payload: dict[str, Any] = {"template": context.template, "attempt": context.attempt}
        principal = context.principal
        if principal is not None:
            payload["user"] = principal.user
        if context.session_id is not None:
            payload["session_id"] = context.session_id
        if context.model is not None:
            payload["model"] = context.model
        self._emit(EventType.RUN_STARTED, context, payload)

    def run_finished(self, context: AgentContext, result: AgentResult) -> None:
        if result.status == "cancelled":  # an abandoned stream: charged, but it did not complete
            payload: dict[str, Any] = {
                "template": context.template,
                "error_code": "cancelled",
                "message": "run cancelled",
                "duration_ms": result.duration_ms,
                "attempt": context.attempt,
            }
            self._emit(EventType.RUN_FAILED, context, payload)
            return
        output = result.output
        payload = {
            "template": context.template,
            "output": output if len(output) <= MAX_OUTPUT_CHARS else output[:MAX_OUTPUT_CHARS],
            "usage": result.usage,
            "duration_ms": result.duration_ms,
            "tool_calls": len(result.tool_calls),
            "status": result.status,
            "model": result.model,
            "attempt": context.attempt,
        }
        if len(output) > MAX_OUTPUT_CHARS:
            payload["output_truncated"] = True
        steps = result.metadata.get("steps")
        if steps:  # a workflow: cost and tokens per step (outputs stay in the run's own output)
            payload["steps"] = [{k: v for k, v in step.items() if k != "output"} for step in steps]
        if result.session_id is not None:
            payload["session_id"] = result.session_id
        self._emit(EventType.RUN_COMPLETED, context, payload)

    def run_failed(self, context: AgentContext, error: AgentRuntimeError, duration_s: float) -> None:
        payload: dict[str, Any] = {
            "template": context.template,
            "error_code": error.code,
            "message": error.message[:_MAX_MESSAGE_CHARS],
            "duration_ms": duration_s * 1000,
            "attempt": context.attempt,
        }
        if context.session_id is not None:
            payload["session_id"] = context.session_id
        self._emit(EventType.RUN_FAILED, context, payload)
        if error.code in ("quota_exceeded", "rate_limited"):
            rejected: dict[str, Any] = {"template": context.template}
            if context.principal is not None:
                rejected["user"] = context.principal.user
            if error.retry_after is not None:
                rejected["retry_after"] = error.retry_after
            if error.code == "quota_exceeded":
                rejected["scope"] = str(error.details.get("quota", "tenant"))
                self._emit(EventType.QUOTA_EXCEEDED, context, rejected)
            else:
                rejected["scope"] = str(error.details.get("scope", "request"))
                self._emit(EventType.RATELIMIT_REJECTED, context, rejected)

    def tool_called(self, context: AgentContext, call: ToolCallRecord) -> None:
        self._emit(EventType.TOOL_CALLED, context, {"tool": call.name, "status": call.status, "call_id": call.id})

    # -- SessionManager.on_event --------------------------------------------------------------------
    def session_event(self, type: str, data: dict[str, Any]) -> None:
        """The session manager's hook: ``session.created`` / ``session.expired`` with a ``tenant`` key."""
        payload = {key: value for key, value in data.items() if value is not None}
        tenant = payload.pop("tenant", None)
        self._queue((type, tenant, None, None, 0, payload))

    async def flush(self, timeout: float | None = None) -> None:
        """Hand buffered notifications to the publisher now and wait (bounded) until the bus has them."""
        if self._buffer:
            self._flush()
        await self.publisher.flush(timeout)

    async def aclose(self, timeout: float | None = None) -> None:
        """Shutdown, before the bus closes: a run's last notifications (``run.completed``) are still in the
        buffer when its caller returns, so hand them over now, then close the publisher, which waits up to
        ``timeout`` (default: its publish timeout) for the bus to take them. Later notifications are lost."""
        self._closed = True
        if self._buffer:
            self._flush()
        await self.publisher.aclose(timeout)

    # -- internals ----------------------------------------------------------------------------------
    def _emit(self, type: str, context: AgentContext, payload: dict[str, Any]) -> None:
        depth, correlation = cause_of(context) if TRIGGER_KEY in context.metadata else (0, None)
        tenant = context.principal.tenant if context.principal is not None else None
        self._queue((type, tenant, context.run_id, correlation or context.request_id or context.run_id, depth, payload))

    def _queue(self, item: _Pending) -> None:
        if self._closed:
            self._lost(item, "event observer closed (the runtime is shutting down)")
            return
        if len(self._buffer) >= _MAX_BUFFER:  # the loop is not getting to flush: shed, do not grow
            self._lost(item, "observer buffer full")
            return
        self._buffer.append(item)
        if not self._scheduled:
            try:
                asyncio.get_running_loop().call_soon(self._flush)
            except RuntimeError:
                self._buffer.pop()
                self._lost(item, "no running event loop")
                return
            self._scheduled = True

    def _flush(self) -> None:
        """Build the envelopes and hand them to the publisher (runs as a loop callback; never raises)."""
        self._scheduled = False
        pending, self._buffer = self._buffer, []
        for item in pending:
            try:
                event = self._build(item)
            except Exception as exc:  # a bad payload loses its event, never the others or the run
                self._lost(item, f"{type(exc).__name__}: {exc}")
                continue
            self.publisher.publish_nowait(event)

    def _build(self, item: _Pending) -> Event:
        type, tenant, run_id, correlation, depth, payload = item
        usage = payload.get("usage")
        if usage is not None and not isinstance(usage, dict):
            payload["usage"] = usage.model_dump()
        spec = CATALOGUE.get(type)
        return Event(
            type=type,
            tenant=tenant,
            source=self.source,
            run_id=run_id,
            correlation_id=correlation,
            depth=depth,
            payload=payload,
            schema_version=spec[0] if spec is not None else 1,
        )

    def _lost(self, item: _Pending, why: str) -> None:
        self.publisher.lost += 1
        log.warning("event %s of run %s lost: %s", item[0], item[2], why)
        if self.publisher.on_lost is not None:
            try:
                self.publisher.on_lost(Event(type=item[0], run_id=item[2]), None)
            except Exception:
                log.exception("on_lost hook failed")
