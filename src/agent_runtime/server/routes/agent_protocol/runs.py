"""``/threads/{id}/runs`` and stateless ``/runs``: runs in LangGraph's shapes over the durable runs of
``/v1`` (``RunDispatcher``): create (background), wait, batch, list, get, join, cancel, delete.

Every run is queued (so it survives the death of the worker that runs it) and is one run record,
whichever API started it. ``wait`` and ``join`` answer the thread's final ``values`` (with
``__interrupt__`` when the run stopped at one), or ``{"__error__": ...}`` for a run that failed. A
stateless run gets a temporary thread, deleted once it is over unless ``on_completion="keep"``.
Another tenant's or user's thread or run is 404, as an unknown one.
"""

from __future__ import annotations

import contextlib
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from agent_runtime.agents.assistants import Assistants
from agent_runtime.errors import ConflictError, RunNotFoundError, RunTimeoutError
from agent_runtime.runs import RunDispatcher, RunFilter
from agent_runtime.runs.record import CancelAction, Run
from agent_runtime.runtime import Runtime
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime
from agent_runtime.server.routes._docs import errors
from agent_runtime.server.routes.agent_protocol._common import APModel, CurrentOwner, only_query, threads_scope
from agent_runtime.server.routes.agent_protocol._run_body import BatchRunCreate, RunCreate
from agent_runtime.server.routes.agent_protocol._run_shapes import run_error_out, run_out
from agent_runtime.server.routes.agent_protocol._run_start import Started, dispatcher_of, start_run, thread_runs
from agent_runtime.server.routes.agent_protocol._shapes import jsonable
from agent_runtime.server.schemas import ID_PATTERN
from agent_runtime.sessions.models import Session
from agent_runtime.sessions.threads import Owner

__all__ = ["MAX_BATCH", "MAX_BULK", "MAX_WAIT_S", "router"]

router = APIRouter(tags=["agent protocol: runs"], dependencies=[Depends(threads_scope)])
ThreadId = Annotated[str, Path(pattern=ID_PATTERN, description="The thread's id (its session id).")]
RunId = Annotated[str, Path(pattern=ID_PATTERN, description="The run's id.")]
MAX_BATCH = 100
MAX_BULK = 1000
MAX_WAIT_S = 3600.0
"""The longest a ``wait`` / ``join`` request blocks (a run always ends: timeouts, attempts, cancel)."""
CancelActionQuery = Annotated[
    CancelAction,
    Query(description="`interrupt` keeps what the run did; `rollback` drops its checkpoints and its record."),
]
_CHECK_S = 1.0  # how often a waiting request looks whether its client went away
_OK = ("success", "interrupted")


# -- create ------------------------------------------------------------------------------------------
@router.post("/threads/{thread_id}/runs", responses=errors(401, 403, 404, 409, 422, 429, 503), summary="Queue a run")
async def create_run(
    thread_id: ThreadId,
    body: RunCreate,
    request: Request,
    principal: CurrentPrincipal,
    owner: CurrentOwner,
    runtime: CurrentRuntime,
) -> JSONResponse:
    started = await start_run(runtime, principal, owner, request, body, thread_id=thread_id)
    return JSONResponse(run_out(started.run), headers=started.headers())


@router.post("/runs", responses=errors(401, 403, 404, 422, 429, 503), summary="Queue a stateless run")
async def create_stateless_run(
    body: RunCreate, request: Request, principal: CurrentPrincipal, owner: CurrentOwner, runtime: CurrentRuntime
) -> JSONResponse:
    started = await start_run(runtime, principal, owner, request, body, thread_id=None)
    return JSONResponse(run_out(started.run), headers=started.headers())


@router.post("/runs/batch", responses=errors(401, 403, 404, 409, 422, 429, 503), summary="Queue several runs")
async def create_batch(
    body: Annotated[list[BatchRunCreate], Body(min_length=1, max_length=MAX_BATCH)],
    request: Request,
    principal: CurrentPrincipal,
    owner: CurrentOwner,
    runtime: CurrentRuntime,
) -> list[dict[str, Any]]:
    """Every item is checked (assistant, input, thread) before any is queued; each is stateless unless
    it names a ``thread_id``."""
    assistants = Assistants(runtime.factory)
    for item in body:
        assistants.get(item.assistant_id)
        item.text()
        if item.thread_id is not None and item.if_not_exists == "reject":
            await runtime.threads.get(item.thread_id, owner)
    out = []
    for item in body:
        started = await start_run(runtime, principal, owner, request, item, thread_id=item.thread_id)
        out.append(run_out(started.run))
    return out


# -- wait --------------------------------------------------------------------------------------------
@router.post(
    "/threads/{thread_id}/runs/wait",
    responses=errors(401, 403, 404, 409, 422, 429, 503, 504),
    summary="Run and answer the thread's final state",
)
async def wait_run(
    thread_id: ThreadId,
    body: RunCreate,
    request: Request,
    principal: CurrentPrincipal,
    owner: CurrentOwner,
    runtime: CurrentRuntime,
) -> JSONResponse:
    started = await start_run(runtime, principal, owner, request, body, thread_id=thread_id, waited=True)
    return await _waited(runtime, request, started, body.on_disconnect)


@router.post(
    "/runs/wait",
    responses=errors(401, 403, 404, 422, 429, 503, 504),
    summary="Run statelessly and answer the final state",
)
async def wait_stateless_run(
    body: RunCreate, request: Request, principal: CurrentPrincipal, owner: CurrentOwner, runtime: CurrentRuntime
) -> JSONResponse:
    started = await start_run(runtime, principal, owner, request, body, thread_id=None, waited=True)
    return await _waited(runtime, request, started, body.on_disconnect)


async def _waited(
    runtime: Runtime, request: Request, started: Started, on_disconnect: Literal["cancel", "continue"] | None
) -> JSONResponse:
    run = await _until_done(runtime, request, started.run, cancel_on_disconnect=on_disconnect == "cancel")
    answer = await _final(runtime, run, started.thread)
    if started.temporary and run.status != "interrupted":  # read: the temporary thread has served
        thread = started.thread
        await runtime.sessions.delete_session(thread.id, tenant=thread.tenant, user_id=thread.user_id)
    headers = {
        "Content-Location": started.location,
        "Location": f"{started.location}/join",  # where the SDK reconnects if the answer is cut off
        "X-Run-Id": run.run_id,
    }
    return JSONResponse(answer, headers=headers)


async def _until_done(runtime: Runtime, request: Request, run: Run, *, cancel_on_disconnect: bool) -> Run:
    """The run once it ended; with ``cancel_on_disconnect`` a client that went away cancels it."""
    dispatcher = dispatcher_of(runtime)
    deadline = time.monotonic() + MAX_WAIT_S
    while not run.done:
        if time.monotonic() > deadline:
            raise RunTimeoutError(
                f"run {run.run_id} is still {run.status}: join it again", details={"run_id": run.run_id}
            )
        if cancel_on_disconnect and await request.is_disconnected():
            return await _cancel(dispatcher, run)
        try:
            run = await dispatcher.wait(run.run_id, run.tenant, timeout_s=_CHECK_S)
        except RunNotFoundError:  # rolled back (its record dropped with its progress)
            return run.model_copy(update={"status": "cancelled", "lease_until": None})
    return run


async def _final(runtime: Runtime, run: Run, thread: Session) -> dict[str, Any]:
    """LangGraph's answer to ``wait`` / ``join``: the thread's values, or the run's error."""
    if run.status not in _OK:
        return run_error_out(run)
    state = await runtime.threads.state(thread)
    values = jsonable(state.values)
    out: dict[str, Any] = dict(values) if isinstance(values, dict) else {"values": values}
    if state.interrupts:
        out["__interrupt__"] = [jsonable(i) for i in state.interrupts]
    return out


# -- read --------------------------------------------------------------------------------------------
async def _thread_run(runtime: Runtime, owner: Owner, thread_id: str, run_id: str) -> tuple[Session, Run]:
    """The owner's thread and its run; a run of another thread (or tenant) is unknown here."""
    thread = await runtime.threads.get(thread_id, owner)
    run = await dispatcher_of(runtime).get(run_id, owner.tenant)
    if run.session_id != thread.id or run.user != thread.user_id:
        raise RunNotFoundError(f"run {run_id} not found", details={"run_id": run_id})
    return thread, run


@router.get(
    "/threads/{thread_id}/runs",
    responses=errors(401, 403, 404, 422),
    dependencies=[Depends(only_query("limit", "offset", "status"))],
    summary="The thread's runs, newest first",
)
async def list_runs(
    thread_id: ThreadId,
    owner: CurrentOwner,
    runtime: CurrentRuntime,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    status: Annotated[
        Literal["pending", "running", "error", "success", "timeout", "interrupted"] | None, Query()
    ] = None,
) -> list[dict[str, Any]]:
    thread = await runtime.threads.get(thread_id, owner)
    dispatcher = dispatcher_of(runtime)
    statuses = ["interrupted", "cancelled"] if status == "interrupted" else [status]
    found: list[Run] = []
    for wanted in statuses:  # LangGraph's interrupted is two statuses here: merge, then page
        found += await thread_runs(dispatcher, thread, status=wanted, want=offset + limit)
    found.sort(key=lambda r: r.created_at, reverse=True)
    return [run_out(r) for r in found[offset : offset + limit]]


@router.get(
    "/threads/{thread_id}/runs/{run_id}",
    responses=errors(401, 403, 404, 422),
    dependencies=[Depends(only_query())],
    summary="One run of the thread",
)
async def get_run(thread_id: ThreadId, run_id: RunId, owner: CurrentOwner, runtime: CurrentRuntime) -> dict[str, Any]:
    _, run = await _thread_run(runtime, owner, thread_id, run_id)
    return run_out(run)


@router.get(
    "/threads/{thread_id}/runs/{run_id}/join",
    responses=errors(401, 403, 404, 422, 504),
    dependencies=[Depends(only_query("cancel_on_disconnect"))],
    summary="Wait for the run to end and answer the thread's final state",
)
async def join_run(
    thread_id: ThreadId,
    run_id: RunId,
    request: Request,
    owner: CurrentOwner,
    runtime: CurrentRuntime,
    cancel_on_disconnect: bool = False,
) -> dict[str, Any]:
    thread, run = await _thread_run(runtime, owner, thread_id, run_id)
    run = await _until_done(runtime, request, run, cancel_on_disconnect=cancel_on_disconnect)
    return await _final(runtime, run, await runtime.threads.get(thread.id, owner))


# -- cancel, delete ----------------------------------------------------------------------------------
async def _cancel(dispatcher: RunDispatcher, run: Run, action: CancelAction = "interrupt") -> Run:
    return await dispatcher.cancel(run.run_id, run.tenant, action)


@router.post(
    "/threads/{thread_id}/runs/{run_id}/cancel",
    status_code=202,
    responses=errors(401, 403, 404, 409, 422),
    dependencies=[Depends(only_query("wait", "action"))],
    summary="Cancel a pending or running run",
)
async def cancel_run(
    thread_id: ThreadId,
    run_id: RunId,
    request: Request,
    owner: CurrentOwner,
    runtime: CurrentRuntime,
    wait: bool = False,
    action: CancelActionQuery = "interrupt",
) -> Response:
    """``interrupt`` stops the run and keeps what it did; ``rollback`` also drops its checkpoints and
    its record (``RunDispatcher.cancel``). 202 at once, or (``wait``) the run's final answer as ``join``
    gives it (after a rollback: the thread as it was before the run)."""
    thread, run = await _thread_run(runtime, owner, thread_id, run_id)
    run = await _cancel(dispatcher_of(runtime), run, action)
    if not wait:
        return Response(status_code=202)
    if action == "interrupt":
        run = await _until_done(runtime, request, run, cancel_on_disconnect=False)
    location = f"/threads/{thread.id}/runs/{run.run_id}"
    headers = {"Location": f"{location}/join", "Content-Location": location}
    return JSONResponse(await _final(runtime, run, thread), headers=headers)


class CancelByIds(APModel):
    """``POST /runs/cancel`` of named runs of one thread."""

    thread_id: str = Field(pattern=ID_PATTERN)
    run_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(min_length=1, max_length=MAX_BULK)


class CancelByStatus(APModel):
    """``POST /runs/cancel`` of every run of the caller in a status."""

    status: Literal["pending", "running", "all"]


@router.post(
    "/runs/cancel",
    status_code=204,
    response_class=Response,
    responses=errors(401, 403, 404, 422),
    dependencies=[Depends(only_query("action"))],
    summary="Cancel several runs",
)
async def cancel_runs(
    body: CancelByIds | CancelByStatus,
    owner: CurrentOwner,
    runtime: CurrentRuntime,
    action: CancelActionQuery = "interrupt",
) -> Response:
    """Every named run is checked (404 when one is not the thread's) before any is cancelled; runs
    that have finished in the meantime are left as they are. With ``status``: the caller's own runs
    (an admin's: his tenant's), up to ``MAX_BULK``."""
    dispatcher = dispatcher_of(runtime)
    if isinstance(body, CancelByIds):
        runs = [(await _thread_run(runtime, owner, body.thread_id, run_id))[1] for run_id in body.run_ids]
    else:
        statuses = ("pending", "running") if body.status == "all" else (body.status,)
        runs = [
            run
            for status in statuses
            for run in await dispatcher.store.find(RunFilter(tenant=owner.tenant, status=status, limit=MAX_BULK))
            if owner.user_id is None or run.user == owner.user_id
        ]
    for run in runs:
        with contextlib.suppress(ConflictError, RunNotFoundError):  # ended, or aged out, meanwhile
            await _cancel(dispatcher, run, action)
    return Response(status_code=204)


@router.delete(
    "/threads/{thread_id}/runs/{run_id}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 403, 404, 409, 422),
    dependencies=[Depends(only_query())],
    summary="Delete a finished run's record",
)
async def delete_run(thread_id: ThreadId, run_id: RunId, owner: CurrentOwner, runtime: CurrentRuntime) -> Response:
    _, run = await _thread_run(runtime, owner, thread_id, run_id)
    await dispatcher_of(runtime).delete(run.run_id, owner.tenant)
    return Response(status_code=204)
