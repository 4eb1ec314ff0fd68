"""Run records under ``/v1/runs``: get, list, cancel and wait; the caller's tenant only.

Another tenant's run answers exactly like an unknown one (404): nothing tells that it exists.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from agent_runtime.errors import ServiceUnavailableError
from agent_runtime.runs import RunDispatcher, RunFilter
from agent_runtime.runtime import Runtime
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime
from agent_runtime.server.routes._docs import ERRORS
from agent_runtime.server.schemas import ID_PATTERN, TEMPLATE_PATTERN, CancelRequest, RunList, RunRecordOut

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
