"""Run records under ``/v1/runs``: get, list, cancel, wait and join; the caller's tenant only.

Another tenant's run answers exactly like an unknown one (404): nothing tells that it exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query

from agent_runtime.errors import AgentRuntimeError, ServiceUnavailableError
from agent_runtime.runs import RunDispatcher, RunFilter
from agent_runtime.runs.events.join import DEFAULT_GRACE_S, FOREGROUND_GRACE_S, check_after, join
from agent_runtime.runs.events.recording import error_event
from agent_runtime.runtime import Runtime
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime
from agent_runtime.server.routes._docs import ERRORS, SSE_RESPONSE, errors
from agent_runtime.server.routes.runs import native_event
from agent_runtime.server.schemas import ID_PATTERN, TEMPLATE_PATTERN, CancelRequest, RunList, RunRecordOut
from agent_runtime.server.sse import EventStreamResponse

__all__ = ["MAX_WAIT_S", "router"]

MAX_WAIT_S = 300.0
router = APIRouter(tags=["runs"])
RunId = Annotated[str, Path(pattern=ID_PATTERN, description="The run's id.")]
Status = Annotated[str | None, Query(pattern=r"^(pending|running|success|error|timeout|interrupted|cancelled)$")]


def _dispatcher(runtime: Runtime) -> RunDispatcher:
    if runtime.dispatcher is None:
        raise ServiceUnavailableError("run records are not available in this process", retry_after=1.0)
    return runtime.dispatcher


@router.get("/v1/runs/{run_id}", response_model=RunRecordOut, responses=ERRORS, summary="One run")
async def get_run(run_id: RunId, principal: CurrentPrincipal, runtime: CurrentRuntime) -> Any:
    return (await _dispatcher(runtime).get(run_id, principal.tenant)).public()


@router.get(
    "/v1/runs",
    response_model=RunList,
    responses=ERRORS,
    summary="The caller's runs",
    description="Newest first; narrowed by `session_id`, `status` and `template`; paginated with `limit`/`offset`.",
)
async def list_runs(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    session_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    status: Status = None,
    template: Annotated[str | None, Query(pattern=TEMPLATE_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Any:
    query = RunFilter(
        tenant=principal.tenant, session_id=session_id, status=status, template=template, limit=limit, offset=offset
    )
    runs = await _dispatcher(runtime).store.find(query)
    return {"runs": [run.public() for run in runs], "limit": limit, "offset": offset}


@router.post(
    "/v1/runs/{run_id}/cancel",
    response_model=RunRecordOut,
    responses=ERRORS,
    summary="Cancel a run",
    description=(
        "A pending run is cancelled at once; a running one is stopped (what it spent is charged) and "
        "answered once it ended (at once when another worker executes it: it stops at its next lease "
        "renewal). `action: rollback` also drops what the run checkpointed in its session, and its "
        "record. 409 when the run has already finished."
    ),
)
async def cancel_run(
    run_id: RunId, principal: CurrentPrincipal, runtime: CurrentRuntime, body: CancelRequest | None = None
) -> Any:
    action = body.action if body is not None else "interrupt"
    return (await _dispatcher(runtime).cancel(run_id, principal.tenant, action)).public()


@router.get(
    "/v1/runs/{run_id}/wait",
    response_model=RunRecordOut,
    responses=ERRORS,
    summary="Wait for a run to finish",
    description="Blocks until the run has finished or `timeout` seconds passed, then answers its record.",
)
async def wait_run(
    run_id: RunId,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    timeout: Annotated[float, Query(gt=0, le=MAX_WAIT_S)] = 30.0,
) -> Any:
    return (await _dispatcher(runtime).wait(run_id, principal.tenant, timeout_s=timeout)).public()


@router.get(
    "/v1/runs/{run_id}/stream",
    responses={200: SSE_RESPONSE, **errors(401, 403, 404, 410, 503)},
    summary="Join a run's event stream",
    description=(
        "The run's events as `POST /v1/runs` streams them, from any worker: those it streamed so far, "
        "then the new ones until it ends. Every event has an SSE `id`; sending the last one back as "
        "`Last-Event-ID` resumes after it. 410: the events after that id are no longer kept."
    ),
)
async def stream_run(
    run_id: RunId,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=128)] = None,
) -> Any:
    dispatcher = _dispatcher(runtime)
    run = await dispatcher.get(run_id, principal.tenant)
    log = runtime.run_events
    if log is None:
        raise ServiceUnavailableError("run events are not available in this process", retry_after=1.0)
    await check_after(log, run_id, last_event_id)

    async def active() -> bool:
        return not (await dispatcher.get(run_id, principal.tenant)).done

    async def events() -> AsyncIterator[bytes]:
        try:
            grace = DEFAULT_GRACE_S if run.background else FOREGROUND_GRACE_S  # its log is written in its request
            async for logged in join(log, run_id, active=active, after=last_event_id, grace_s=grace):
                encoded = native_event(logged.event, id=logged.id)
                if encoded is not None:
                    yield encoded
        except AgentRuntimeError as exc:  # the log failed, or its window moved past us, mid-stream
            encoded = native_event(error_event(run_id, exc))
            if encoded is not None:
                yield encoded

    return EventStreamResponse(events(), headers={"X-Run-Id": run.run_id})
