"""``/runs/crons``: LangGraph's cron routes over the runtime's schedules (``agent_runtime.crons``).

The same schedules as ``/v1/crons``: ``assistant_id`` is the template (its name or UUID), ``thread_id``
the session every run continues (a stateless cron's runs have no thread, LangGraph's ``on_run_completed:
"delete"``; ``"keep"`` is refused). The answers have LangGraph's ``Cron`` shape. Fields agent-runtime
does not implement for crons (config, context, interrupts, stream options, durability; a multitask
strategy other than ``reject`` on a stateless cron, whose runs share no thread) answer 422 naming the
field. A ``webhook`` must be on the server's allow-list (422 otherwise), like a run's. A thread cron needs the
``sessions`` scope and a thread of the caller's own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import Field

from agent_runtime.agents.assistants import Assistants, assistant_id
from agent_runtime.crons import CronChanges, CronFilter, CronSpec, Schedule
from agent_runtime.crons.base import SortBy
from agent_runtime.errors import ValidationError
from agent_runtime.runs.multitask import DEFAULT_STRATEGY, MultitaskStrategy
from agent_runtime.runtime import Runtime
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime
from agent_runtime.server.routes._cron_schema import SCHEDULE_SCHEMA, TIMEZONE_SCHEMA
from agent_runtime.server.routes._docs import errors
from agent_runtime.server.routes.agent_protocol._common import APModel, only_query, threads_scope
from agent_runtime.server.routes.crons import crons_of, unix_time
from agent_runtime.server.schemas import ID_PATTERN, TEXT_PATTERN
from agent_runtime.sessions.threads import Owner
from agent_runtime.types import Principal

__all__ = ["cron_out", "input_text", "router"]

router = APIRouter(tags=["agent protocol: crons"])
CronId = Annotated[str, Path(pattern=ID_PATTERN, description="The cron's id.")]
ThreadId = Annotated[str, Path(pattern=ID_PATTERN, description="The thread (session) every run continues.")]
_UNSUPPORTED = (
    "config",
    "context",
    "checkpoint_during",
    "interrupt_before",
    "interrupt_after",
    "stream_mode",
    "stream_subgraphs",
    "stream_resumable",
    "durability",
)
CronSortBy = Literal["cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"]
_SORT: dict[str, SortBy] = {
    "cron_id": "cron_id",
    "assistant_id": "template",
    "thread_id": "session_id",
    "next_run_date": "next_run_at",
    "end_time": "end_time",
    "created_at": "created_at",
    "updated_at": "updated_at",
}
SelectField = Literal[
    "cron_id",
    "assistant_id",
    "thread_id",
    "on_run_completed",
    "end_time",
    "schedule",
    "timezone",
    "created_at",
    "updated_at",
    "payload",
    "user_id",
    "next_run_date",
    "metadata",
    "enabled",
]


class TextBlock(APModel):
    type: Literal["text"]
    text: str = Field(pattern=TEXT_PATTERN)


class UserMessage(APModel):
    """The one message each run of a cron gets (LangGraph's ``{"role": "user", "content": ...}``)."""

    role: Literal["user", "human"] | None = None
    type: Literal["user", "human"] | None = None
    content: Annotated[str, Field(pattern=TEXT_PATTERN)] | Annotated[list[TextBlock], Field(min_length=1)]


class CronInput(APModel):
    messages: list[UserMessage | Annotated[str, Field(pattern=TEXT_PATTERN)]] = Field(min_length=1, max_length=1)


class CronBody(APModel):
    """What LangGraph's cron create and patch share."""

    unsupported: ClassVar[tuple[str, ...]] = _UNSUPPORTED
    input: CronInput | None = None
    metadata: dict[str, Any] | None = None
    end_time: datetime | None = None
    enabled: bool | None = None
    timezone: str | None = Field(default=None, max_length=100, json_schema_extra=TIMEZONE_SCHEMA)
    webhook: str | None = Field(default=None, max_length=2048)


class CronCreateBody(CronBody):
    assistant_id: str = Field(max_length=200)
    schedule: str = Field(max_length=200, json_schema_extra=SCHEDULE_SCHEMA)
    on_run_completed: Literal["delete"] | None = None
    multitask_strategy: Literal["reject"] | None = None


class ThreadCronCreateBody(CronBody):
    assistant_id: str = Field(max_length=200)
    schedule: str = Field(max_length=200, json_schema_extra=SCHEDULE_SCHEMA)
    multitask_strategy: MultitaskStrategy | None = None


class CronPatchBody(CronBody):
    schedule: str | None = Field(default=None, max_length=200, json_schema_extra=SCHEDULE_SCHEMA)
    on_run_completed: Literal["delete"] | None = None


class CronCountBody(APModel):
    assistant_id: str | None = Field(default=None, max_length=200)
    thread_id: str | None = Field(default=None, pattern=ID_PATTERN)
    metadata: dict[str, Any] | None = None


class CronSearchBody(CronCountBody):
    enabled: bool | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: CronSortBy = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[SelectField] | None = None


def input_text(value: CronInput | None) -> str:
    """The text each run of the cron is sent: its one user message."""
    if value is None:
        raise ValidationError("input is required: {'messages': [one user message]}", details={"param": "input"})
    message = value.messages[0]
    if isinstance(message, str):
        return message
    if isinstance(message.content, str):
        return message.content
    return "".join(block.text for block in message.content)


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()


def cron_out(schedule: Schedule, select: list[SelectField] | None = None) -> dict[str, Any]:
    """A schedule in LangGraph's ``Cron`` shape (only the ``select`` fields when given)."""
    shape: dict[str, Any] = {
        "cron_id": schedule.cron_id,
        "assistant_id": assistant_id(schedule.template),
        "thread_id": schedule.session_id,
        "on_run_completed": None if schedule.session_id is not None else "delete",
        "end_time": _iso(schedule.end_time),
        "schedule": schedule.schedule,
        "timezone": schedule.timezone,
        "created_at": _iso(schedule.created_at),
        "updated_at": _iso(schedule.updated_at),
        "payload": schedule.payload,
        "user_id": schedule.user,
        "next_run_date": _iso(schedule.next_run_at),
        "metadata": schedule.metadata,
        "enabled": schedule.enabled,
    }
    return shape if select is None else {name: shape[name] for name in select}


def _template(runtime: Runtime, assistant: str) -> str:
    return Assistants(runtime.factory).get(assistant).graph_id


async def _create(
    runtime: Runtime, principal: Principal, body: CronCreateBody | ThreadCronCreateBody, thread_id: str | None
) -> dict[str, Any]:
    spec = CronSpec(
        template=_template(runtime, body.assistant_id),
        input=input_text(body.input),
        schedule=body.schedule,
        timezone=body.timezone or "UTC",
        session_id=thread_id,
        enabled=body.enabled if body.enabled is not None else True,
        end_time=unix_time(body.end_time),
        multitask_strategy=body.multitask_strategy or DEFAULT_STRATEGY,
        webhook=body.webhook,
        metadata=body.metadata or {},
        payload=body.model_dump(mode="json", exclude_none=True, exclude_unset=True),
    )
    return cron_out(await crons_of(runtime).create(principal, spec))


@router.post("/runs/crons", responses=errors(401, 403, 404, 409, 413, 422), summary="Create a stateless cron")
async def create_cron(body: CronCreateBody, principal: CurrentPrincipal, runtime: CurrentRuntime) -> dict[str, Any]:
    return await _create(runtime, principal, body, None)


@router.post(
    "/threads/{thread_id}/runs/crons",
    dependencies=[Depends(threads_scope)],
    responses=errors(401, 403, 404, 409, 413, 422),
    summary="Create a cron on a thread",
)
async def create_thread_cron(
    thread_id: ThreadId, body: ThreadCronCreateBody, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> dict[str, Any]:
    await runtime.threads.get(thread_id, Owner.of(principal, admin=False))  # the caller's own thread, or 404
    return await _create(runtime, principal, body, thread_id)


def _filter(runtime: Runtime, principal: Principal, body: CronCountBody, limit: int = 10_000) -> CronFilter:
    template = _template(runtime, body.assistant_id) if body.assistant_id is not None else None
    search = body if isinstance(body, CronSearchBody) else None
    sort_by = search.sort_by if search is not None else "created_at"
    return CronFilter(
        tenant=principal.tenant,
        template=template,
        session_id=body.thread_id,
        enabled=search.enabled if search is not None else None,
        metadata=body.metadata or {},
        sort_by=_SORT[sort_by],
        descending=search is None or search.sort_order == "desc",
        limit=search.limit if search is not None else limit,
        offset=search.offset if search is not None else 0,
    )


@router.post("/runs/crons/search", responses=errors(401, 404, 422), summary="Search crons")
async def search_crons(
    body: CronSearchBody, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[dict[str, Any]]:
    found = await crons_of(runtime).find(principal, _filter(runtime, principal, body))
    return [cron_out(schedule, body.select) for schedule in found]


@router.post("/runs/crons/count", responses=errors(401, 404, 422), summary="Count crons")
async def count_crons(body: CronCountBody, principal: CurrentPrincipal, runtime: CurrentRuntime) -> int:
    return len(await crons_of(runtime).find(principal, _filter(runtime, principal, body)))


@router.get(
    "/runs/crons/{cron_id}", dependencies=[Depends(only_query())], responses=errors(401, 404, 422), summary="One cron"
)
async def get_cron(cron_id: CronId, principal: CurrentPrincipal, runtime: CurrentRuntime) -> dict[str, Any]:
    return cron_out(await crons_of(runtime).get(principal, cron_id))


@router.patch("/runs/crons/{cron_id}", responses=errors(401, 403, 404, 413, 422), summary="Update a cron")
async def patch_cron(
    cron_id: CronId, body: CronPatchBody, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ("schedule", "timezone", "enabled", "metadata", "webhook"):
        if getattr(body, name) is not None:
            values[name] = getattr(body, name)
    if body.input is not None:
        values["input"] = input_text(body.input)
    if body.end_time is not None:
        values["end_time"] = unix_time(body.end_time)
    clear = "end_time" in body.model_fields_set and body.end_time is None
    updated = await crons_of(runtime).update(principal, cron_id, CronChanges(values=values, clear_end_time=clear))
    return cron_out(updated)


@router.delete(
    "/runs/crons/{cron_id}",
    status_code=204,
    response_class=Response,
    dependencies=[Depends(only_query())],
    responses=errors(401, 404, 422),
    summary="Delete a cron",
)
async def delete_cron(cron_id: CronId, principal: CurrentPrincipal, runtime: CurrentRuntime) -> Response:
    await crons_of(runtime).delete(principal, cron_id)
    return Response(status_code=204)
