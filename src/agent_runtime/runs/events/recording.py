"""How a worker writes a run's stream into its event log.

Every event but the last is appended as it comes; the last one (``final`` or ``error``) is held back
and appended by ``end`` once the run's outcome is in its record, then the log is closed: a client
whose stream ended finds the run finished. A failing log never fails the run (it is logged): the
run's outcome lives in its record, the log is what joiners see of it on the way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agent_runtime.errors import AgentRunError, AgentRuntimeError, error_from_dict
from agent_runtime.orchestration.recovery import SALVAGED_KEY
from agent_runtime.runs.events.base import RunEventLog
from agent_runtime.types import AgentResult, StreamEvent, Usage

__all__ = ["Streamed", "append", "end", "error_event", "record_stream"]

log = logging.getLogger("agent_runtime.runs")


@dataclass(frozen=True, slots=True)
class Streamed:
    """What a streamed run produced: its result (``SALVAGED_KEY`` as ``Usage``), and its ``final`` event."""

    result: AgentResult
    final: StreamEvent


async def record_stream(events: RunEventLog | None, run_id: str, stream: AsyncIterator[StreamEvent]) -> Streamed:
    """Consume a run's stream into its log; its result, or its typed error raised (``error_from_dict``)."""
    async with contextlib.aclosing(stream) as events_of_run:  # type: ignore[type-var]  # an async generator
        async for event in events_of_run:
            if event.type == "final":
                return _final(event)
            if event.type == "error":
                raise error_from_dict(event.data)
            await append(events, run_id, event)
    raise AgentRunError(f"the stream of run {run_id} ended without a result")


def _final(event: StreamEvent) -> Streamed:
    data = dict(event.data)
    metadata = dict(data.get("metadata") or {})
    salvaged = metadata.pop(SALVAGED_KEY, None)
    result = AgentResult.model_validate({**data, "metadata": metadata})
    if isinstance(salvaged, dict):  # the worker's to charge, not the client's to see
        result.metadata[SALVAGED_KEY] = Usage.model_validate(salvaged)
    return Streamed(result, event.model_copy(update={"data": {**data, "metadata": metadata}}))


def error_event(run_id: str, error: AgentRuntimeError | dict[str, object]) -> StreamEvent:
    """The ``error`` event a run ended with (from its error, or its record's ``error``)."""
    body = error.to_dict()["error"] if isinstance(error, AgentRuntimeError) else dict(error)
    return StreamEvent(type="error", run_id=run_id, data=body)


async def append(events: RunEventLog | None, run_id: str, event: StreamEvent) -> None:
    if events is None:
        return
    try:
        await events.append(run_id, event)
    except AgentRuntimeError as exc:
        log.warning("run %s: event log append failed: %s", run_id, exc.message)


async def end(events: RunEventLog | None, run_id: str, last: StreamEvent | None) -> None:
    """The run ended: its last event, then no more."""
    if events is None:
        return
    if last is not None:
        await append(events, run_id, last)
    try:
        await events.close(run_id)
    except AgentRuntimeError as exc:
        log.warning("run %s: event log close failed: %s", run_id, exc.message)
