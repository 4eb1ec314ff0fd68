"""Streamed Agent Protocol runs: ``POST /threads/{id}/runs/stream``, stateless ``POST /runs/stream``, and
the join ``GET /threads/{id}/runs/{run_id}/stream``: LangGraph's SSE over the durable runs of ``/v1``.

A streamed run is queued like every other run (``start_run``: the same checks, thread handling and
record), and its response joins the run's event log (``runs.events.join``), which the worker that
executes it (this process or another) writes event by event. So every stream is resumable: each event
has the SSE ``id`` of its log entry, and a join with ``Last-Event-ID`` resumes after it; a stream
whose worker dies goes on with the worker that takes the run over.

``on_disconnect``: ``continue`` (LangGraph's default) lets the run finish when its client goes away
(join it again later), ``cancel`` cancels it. The join takes ``cancel_on_disconnect`` and
``stream_mode`` (by default the modes the run was created with); it replays the run's events from
its start, then follows it. Events are shaped per mode by ``_stream_modes``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import Field, field_validator

from agent_runtime.agents.assistants import assistant_id
from agent_runtime.errors import AgentRuntimeError, RunNotFoundError, ServiceUnavailableError, ValidationError
from agent_runtime.runs.events.base import RunEventLog
from agent_runtime.runs.events.join import check_after, join
from agent_runtime.runs.record import Run
from agent_runtime.runs.recorder import KWARGS_KEY
from agent_runtime.runtime import Runtime
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime
from agent_runtime.server.routes._docs import SSE_RESPONSE, errors
from agent_runtime.server.routes.agent_protocol._common import CurrentOwner, only_query, threads_scope
from agent_runtime.server.routes.agent_protocol._run_body import RunCreate
from agent_runtime.server.routes.agent_protocol._run_start import Started, dispatcher_of, start_run
from agent_runtime.server.routes.agent_protocol._stream_modes import (
    DEFAULT_MODE,
    STREAM_MODES,
    RunInfo,
    StreamShaper,
    encode,
    error_part,
    stream_modes,
)
from agent_runtime.server.schemas import ID_PATTERN
from agent_runtime.server.sse import EventStreamResponse
from agent_runtime.sessions.models import Session
from agent_runtime.sessions.threads import Owner
from agent_runtime.types import Principal

__all__ = ["StreamRunCreate", "router", "thread_run"]

router = APIRouter(tags=["agent protocol: runs stream"], dependencies=[Depends(threads_scope)])
ThreadId = Annotated[str, Path(pattern=ID_PATTERN, description="The thread's id (its session id).")]
RunId = Annotated[str, Path(pattern=ID_PATTERN, description="The run's id.")]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=128)]
_STREAMED = {200: SSE_RESPONSE, **errors(401, 403, 404, 409, 410, 422, 429, 503)}
Streamable = Literal["values", "updates", "messages", "messages-tuple", "custom"]


def _values() -> list[Streamable]:
    return ["values"]


class StreamRunCreate(RunCreate):
    """A run to stream: its ``stream_mode`` lists only the modes agent-runtime streams (others: 422
    naming the mode)."""

    stream_mode: list[Streamable] = Field(default_factory=_values, max_length=len(STREAM_MODES))

    @field_validator("stream_mode", mode="before")
    @classmethod
    def _streamable(cls, value: Any) -> Any:
        modes = [value] if isinstance(value, str) else value
        if isinstance(modes, list) and all(isinstance(mode, str) for mode in modes):
            try:
                return list(stream_modes(modes))
            except ValidationError as exc:
                raise ValueError(exc.message) from None
        return modes


@router.post("/threads/{thread_id}/runs/stream", responses=_STREAMED, summary="Run on a thread, streamed")
async def stream_run(
    thread_id: ThreadId,
    body: StreamRunCreate,
    request: Request,
    principal: CurrentPrincipal,
    owner: CurrentOwner,
    runtime: CurrentRuntime,
) -> EventStreamResponse:
    return await _started_stream(runtime, principal, owner, request, body, thread_id=thread_id)


@router.post("/runs/stream", responses=_STREAMED, summary="Run statelessly, streamed")
async def stream_stateless_run(
    body: StreamRunCreate, request: Request, principal: CurrentPrincipal, owner: CurrentOwner, runtime: CurrentRuntime
) -> EventStreamResponse:
    return await _started_stream(runtime, principal, owner, request, body, thread_id=None)


async def _started_stream(
    runtime: Runtime,
    principal: Principal,
    owner: Owner,
    request: Request,
    body: StreamRunCreate,
    *,
    thread_id: str | None,
) -> EventStreamResponse:
    """Check what would fail the stream (the event log), queue the run, stream its events."""
    modes = tuple(body.stream_mode) or (DEFAULT_MODE,)
    log = _log(runtime)
    started = await start_run(runtime, principal, owner, request, body, thread_id=thread_id)
    events = _events(runtime, log, started.run, modes, thread_id=started.thread.id, after=None)
    cancel = body.on_disconnect == "cancel"
    return EventStreamResponse(
        _cancelling(runtime, started.run, events) if cancel else events, headers=_headers(started)
    )


def _headers(started: Started) -> dict[str, str]:
    """``Location``: where the SDK reconnects (``Last-Event-ID``) if the stream is cut off."""
    return {**started.headers(), "Location": f"{started.location}/stream"}


@router.get(
    "/threads/{thread_id}/runs/{run_id}/stream",
    responses=_STREAMED,
    dependencies=[Depends(only_query("cancel_on_disconnect", "stream_mode"))],
    summary="Join a run's stream",
    description=(
        "The run's events from its start (after `Last-Event-ID` when given), then the new ones until it "
        "ends, from any worker. 410: the events after that id are no longer kept."
    ),
)
async def join_stream(
    thread_id: ThreadId,
    run_id: RunId,
    owner: CurrentOwner,
    runtime: CurrentRuntime,
    last_event_id: LastEventId = None,
    cancel_on_disconnect: bool = False,
    stream_mode: Annotated[list[str] | None, Query(max_length=16)] = None,
) -> EventStreamResponse:
    thread, run = await thread_run(runtime, owner, thread_id, run_id)
    asked = [mode for mode in stream_mode or () if mode]  # the SDK sends ``stream_mode=`` for none
    modes = stream_modes(asked or _run_modes(run))
    log = _log(runtime)
    await check_after(log, run.run_id, last_event_id)
    events = _events(runtime, log, run, modes, thread_id=thread.id, after=last_event_id)
    location = f"/threads/{thread.id}/runs/{run.run_id}"
    headers = {"Location": f"{location}/stream", "Content-Location": location, "X-Run-Id": run.run_id}
    return EventStreamResponse(_cancelling(runtime, run, events) if cancel_on_disconnect else events, headers=headers)


async def thread_run(runtime: Runtime, owner: Owner, thread_id: str, run_id: str) -> tuple[Session, Run]:
    """The owner's thread and its run; a run of another thread, user or tenant is unknown here (404)."""
    thread = await runtime.threads.get(thread_id, owner)
    run = await dispatcher_of(runtime).get(run_id, owner.tenant)
    if run.session_id != thread.id or run.user != thread.user_id:
        raise RunNotFoundError(f"run {run_id} not found", details={"run_id": run_id})
    return thread, run


def _run_modes(run: Run) -> list[str] | None:
    modes = (run.metadata.get(KWARGS_KEY) or {}).get("stream_mode")
    return [str(m) for m in modes] if isinstance(modes, list) else None


def _log(runtime: Runtime) -> RunEventLog:
    if runtime.run_events is None:
        raise ServiceUnavailableError("run events are not available in this process", retry_after=1.0)
    return runtime.run_events


async def _events(
    runtime: Runtime, log: RunEventLog, run: Run, modes: tuple[str, ...], *, thread_id: str, after: str | None
) -> AsyncIterator[bytes]:
    """The run's log as LangGraph's SSE: ``metadata`` first (a fresh stream), then the parts of each
    event, all with the event's log id (one write per event)."""
    info = RunInfo(run.run_id, assistant_id(run.template), run.template, thread_id, max(1, run.attempts))
    shaper = StreamShaper(modes, info)
    dispatcher = dispatcher_of(runtime)

    async def active() -> bool:
        return not (await dispatcher.get(run.run_id, run.tenant)).done

    if after is None:
        yield encode(shaper.start())
    try:
        async for logged in join(log, run.run_id, active=active, after=after):
            parts = shaper.shape(logged.event)
            if parts:
                yield b"".join(encode(part, logged.id) for part in parts)
    except AgentRuntimeError as exc:  # the log failed, or its window moved past this reader
        yield encode(error_part(exc.to_dict()["error"]))


async def _cancelling(runtime: Runtime, run: Run, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``events``; a client that goes away before they end cancels the run (``on_disconnect: cancel``)."""
    ended = False
    try:
        async for chunk in events:
            yield chunk
        ended = True
    finally:
        await events.aclose()  # type: ignore[attr-defined]  # an async generator
        if not ended:
            with contextlib.suppress(AgentRuntimeError):  # it ended meanwhile: nothing to cancel
                await dispatcher_of(runtime).cancel(run.run_id, run.tenant)
