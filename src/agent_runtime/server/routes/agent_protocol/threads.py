"""``/threads``: sessions as LangGraph threads: create, read, update, delete, search, copy, state
(read and update, ``as_node``), history (time travel, forks from a checkpoint).

A thread is a session (same id, same checkpoints): started here it continues in ``/v1/sessions`` and
``/v1/runs``, and the other way round. Every route needs the ``sessions`` scope; another tenant's or
user's thread is 404 (an admin reaches every thread of his tenant).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import Field, field_validator

from agent_runtime.errors import ValidationError
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime
from agent_runtime.server.routes._docs import errors
from agent_runtime.server.routes.agent_protocol._common import APModel, CurrentOwner, only_query, threads_scope
from agent_runtime.server.routes.agent_protocol._shapes import checkpoint_out, state_out, thread_out
from agent_runtime.server.schemas import ID_PATTERN
from agent_runtime.sessions.models import Session
from agent_runtime.sessions.threads import MAX_HISTORY, ThreadFilter, Threads, ThreadStatus

__all__ = ["router"]

router = APIRouter(tags=["agent protocol: threads"], dependencies=[Depends(threads_scope)])
ThreadId = Annotated[str, Path(pattern=ID_PATTERN, description="The thread's id (its session id).")]
MAX_TTL_MINUTES = 365 * 24 * 60


class TTL(APModel):
    """LangGraph's thread TTL, in minutes; at expiry the thread is deleted (sessions' sliding TTL)."""

    ttl: float = Field(gt=0, le=MAX_TTL_MINUTES)
    strategy: Literal["delete"] = "delete"

    @property
    def seconds(self) -> float:
        return self.ttl * 60


class SuperstepUpdate(APModel):
    unsupported: ClassVar[tuple[str, ...]] = ("command",)
    values: dict[str, Any] | None = None
    as_node: str = Field(max_length=200)


class Superstep(APModel):
    updates: list[SuperstepUpdate] = Field(min_length=1, max_length=100)


class ThreadCreate(APModel):
    supersteps: list[Superstep] | None = Field(default=None, max_length=100)
    thread_id: str | None = Field(default=None, pattern=ID_PATTERN)
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    ttl: TTL | None = None


class ThreadPatch(APModel):
    metadata: dict[str, Any] | None = None
    ttl: TTL | None = None


class ThreadCount(APModel):
    unsupported: ClassVar[tuple[str, ...]] = ("values",)
    metadata: dict[str, Any] | None = None
    status: ThreadStatus | None = None


class ThreadSearch(ThreadCount):
    unsupported: ClassVar[tuple[str, ...]] = ("values", "select", "extract")
    ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] | None = Field(default=None, max_length=1000)
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None


class ThreadPrune(APModel):
    thread_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(min_length=1, max_length=1000)
    strategy: Literal["delete", "keep_latest"] = "delete"


class CheckpointRef(APModel):
    thread_id: str | None = None
    checkpoint_ns: str = Field(default="", max_length=0, description='Only the root graph\'s namespace, `""`.')
    checkpoint_id: str | None = Field(default=None, max_length=200)
    checkpoint_map: dict[str, Any] | None = None

    @field_validator("checkpoint_ns", mode="before")
    @classmethod
    def _root_only(cls, value: Any) -> Any:
        if isinstance(value, str) and value:
            raise ValueError("checkpoints of subgraph namespaces are not supported by agent-runtime")
        return value


class StateUpdate(APModel):
    values: dict[str, Any] | None = None
    as_node: str | None = Field(default=None, max_length=200)
    checkpoint_id: str | None = Field(default=None, max_length=200)
    checkpoint: CheckpointRef | None = None


class StateAt(APModel):
    unsupported = ("select",)
    checkpoint: CheckpointRef
    subgraphs: bool = False


class HistoryRequest(APModel):
    unsupported = ("select",)
    limit: int = Field(default=10, ge=1, le=MAX_HISTORY)
    before: str | CheckpointRef | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None


def _threads(runtime: CurrentRuntime) -> Threads:
    return runtime.threads


CurrentThreads = Annotated[Threads, Depends(_threads)]


def _checkpoint_id(thread_id: str, *refs: str | CheckpointRef | None) -> str | None:
    """The checkpoint id a body names (first given wins); a reference to another thread is refused."""
    for ref in refs:
        if isinstance(ref, str):
            return ref
        if ref is not None:
            if ref.thread_id not in (None, thread_id):
                raise ValidationError("checkpoint.thread_id names another thread", details={"param": "checkpoint"})
            if ref.checkpoint_id is not None:
                return ref.checkpoint_id
    return None


async def _thread(threads: Threads, thread_id: str, owner: Any) -> Session:
    return await threads.get(thread_id, owner)


@router.post("/threads", responses=errors(401, 403, 409, 422, 429), summary="Create a thread")
async def create_thread(body: ThreadCreate, principal: CurrentPrincipal, threads: CurrentThreads) -> dict[str, Any]:
    session = await threads.create(
        principal,
        thread_id=body.thread_id,
        metadata=body.metadata,
        if_exists=body.if_exists,
        ttl_s=body.ttl.seconds if body.ttl else None,
        supersteps=[[(u.values, u.as_node) for u in step.updates] for step in body.supersteps or ()],
    )
    return thread_out(await threads.view(session))


@router.post("/threads/search", responses=errors(401, 403, 422), summary="Search the caller's threads")
async def search_threads(body: ThreadSearch, owner: CurrentOwner, threads: CurrentThreads) -> list[dict[str, Any]]:
    query = ThreadFilter(
        metadata=body.metadata,
        ids=body.ids,
        status=body.status,
        sort_by=body.sort_by or "created_at",
        descending=body.sort_order != "asc",
        limit=body.limit,
        offset=body.offset,
    )
    return [thread_out(view) for view in await threads.search(owner, query)]


@router.post("/threads/count", responses=errors(401, 403, 422), summary="Count the caller's threads")
async def count_threads(body: ThreadCount, owner: CurrentOwner, threads: CurrentThreads) -> int:
    query = ThreadFilter(metadata=body.metadata, status=body.status, limit=1_000_000)
    return len(await threads.search(owner, query))


@router.post(
    "/threads/prune", responses=errors(401, 403, 422), summary="Delete threads, or keep only their latest state"
)
async def prune_threads(body: ThreadPrune, owner: CurrentOwner, threads: CurrentThreads) -> dict[str, int]:
    return {"pruned_count": await threads.prune(owner, body.thread_ids, body.strategy)}


@router.get("/threads/{thread_id}", responses=errors(401, 403, 404, 422), dependencies=[Depends(only_query())])
async def get_thread(thread_id: ThreadId, owner: CurrentOwner, threads: CurrentThreads) -> dict[str, Any]:
    return thread_out(await threads.view(await _thread(threads, thread_id, owner)))


@router.patch("/threads/{thread_id}", responses=errors(401, 403, 404, 422), summary="Merge metadata, set a TTL")
async def patch_thread(
    thread_id: ThreadId, body: ThreadPatch, owner: CurrentOwner, threads: CurrentThreads
) -> dict[str, Any]:
    session = await _thread(threads, thread_id, owner)
    session = await threads.update(session, metadata=body.metadata, ttl_s=body.ttl.seconds if body.ttl else None)
    return thread_out(await threads.view(session))


@router.delete(
    "/threads/{thread_id}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 403, 404, 422),
    summary="Delete a thread and its checkpoints",
)
async def delete_thread(thread_id: ThreadId, owner: CurrentOwner, threads: CurrentThreads) -> Response:
    await threads.delete(thread_id, owner)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/copy", responses=errors(401, 403, 404, 422, 429), summary="Copy a thread")
async def copy_thread(thread_id: ThreadId, owner: CurrentOwner, threads: CurrentThreads) -> dict[str, Any]:
    copied = await threads.copy(await _thread(threads, thread_id, owner))
    return thread_out(await threads.view(copied))


@router.get(
    "/threads/{thread_id}/state",
    responses=errors(401, 403, 404, 422),
    dependencies=[Depends(only_query("subgraphs"))],
    summary="The thread's latest state",
)
async def get_state(
    thread_id: ThreadId, owner: CurrentOwner, threads: CurrentThreads, subgraphs: bool = False
) -> dict[str, Any]:
    session = await _thread(threads, thread_id, owner)
    return state_out(session, await threads.state(session, subgraphs=subgraphs))


@router.get(
    "/threads/{thread_id}/state/{checkpoint_id}",
    responses=errors(401, 403, 404, 422),
    dependencies=[Depends(only_query("subgraphs"))],
    summary="The thread's state at a checkpoint",
)
async def get_state_at(
    thread_id: ThreadId,
    checkpoint_id: Annotated[str, Path(max_length=200)],
    owner: CurrentOwner,
    threads: CurrentThreads,
    subgraphs: bool = False,
) -> dict[str, Any]:
    session = await _thread(threads, thread_id, owner)
    return state_out(session, await threads.state(session, checkpoint_id, subgraphs=subgraphs))


@router.post(
    "/threads/{thread_id}/state/checkpoint",
    responses=errors(401, 403, 404, 422),
    summary="The thread's state at a checkpoint (by reference)",
)
async def post_state_at(
    thread_id: ThreadId, body: StateAt, owner: CurrentOwner, threads: CurrentThreads
) -> dict[str, Any]:
    session = await _thread(threads, thread_id, owner)
    state = await threads.state(session, _checkpoint_id(thread_id, body.checkpoint), subgraphs=body.subgraphs)
    return state_out(session, state)


@router.post(
    "/threads/{thread_id}/state",
    responses=errors(401, 403, 404, 409, 422),
    summary="Update the thread's state (as a node, optionally forking from a checkpoint)",
)
async def update_state(
    thread_id: ThreadId, body: StateUpdate, owner: CurrentOwner, threads: CurrentThreads
) -> dict[str, Any]:
    session = await _thread(threads, thread_id, owner)
    checkpoint_id = _checkpoint_id(thread_id, body.checkpoint_id, body.checkpoint)
    configurable = await threads.update_state(session, body.values, as_node=body.as_node, checkpoint_id=checkpoint_id)
    return {"checkpoint": checkpoint_out(session, {"configurable": configurable})}


@router.get(
    "/threads/{thread_id}/history",
    responses=errors(401, 403, 404, 422),
    dependencies=[Depends(only_query("limit", "before"))],
    summary="The thread's past states, newest first",
)
async def get_history(
    thread_id: ThreadId,
    owner: CurrentOwner,
    threads: CurrentThreads,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 10,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    session = await _thread(threads, thread_id, owner)
    return [state_out(session, s) for s in await threads.history(session, limit=limit, before=before)]


@router.post(
    "/threads/{thread_id}/history",
    responses=errors(401, 403, 404, 422),
    summary="The thread's past states, newest first (filtered)",
)
async def post_history(
    thread_id: ThreadId, body: HistoryRequest, owner: CurrentOwner, threads: CurrentThreads
) -> list[dict[str, Any]]:
    session = await _thread(threads, thread_id, owner)
    states = await threads.history(
        session,
        limit=body.limit,
        before=_checkpoint_id(thread_id, body.before),
        metadata=body.metadata,
        checkpoint_id=_checkpoint_id(thread_id, body.checkpoint),
    )
    return [state_out(session, s) for s in states]
