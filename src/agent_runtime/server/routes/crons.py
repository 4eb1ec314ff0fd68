"""``/v1/crons``: schedules that start background runs of a template; the caller's own (an admin's: its tenant's).

Creating one needs the scopes a run of it needs (``agents:run:<template>``, and ``sessions`` with a
``session_id``); the runs it starts are the creator's. Another user's or tenant's schedule is 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from agent_runtime.crons import CronChanges, CronFilter, Crons, CronSpec
from agent_runtime.errors import ServiceUnavailableError
from agent_runtime.runs.multitask import DEFAULT_STRATEGY, MultitaskStrategy
from agent_runtime.runtime import Runtime
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime
from agent_runtime.server.routes._cron_schema import SCHEDULE_SCHEMA, TIMEZONE_SCHEMA
from agent_runtime.server.routes._docs import errors
from agent_runtime.server.schemas import ID_PATTERN, TEMPLATE_PATTERN, TEXT_PATTERN

__all__ = ["CronCreate", "CronOut", "CronPatch", "crons_of", "router", "unix_time"]

router = APIRouter(tags=["crons"])
CronId = Annotated[str, Path(pattern=ID_PATTERN, description="The schedule's id.")]


class CronCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = Field(pattern=TEMPLATE_PATTERN)
    input: str = Field(pattern=TEXT_PATTERN, description="The message each run gets.")
    schedule: str = Field(
        max_length=200, description="Five cron fields, e.g. `*/15 * * * *`.", json_schema_extra=SCHEDULE_SCHEMA
    )
    timezone: str = Field(
        default="UTC",
        max_length=100,
        description="IANA time zone of the expression.",
        json_schema_extra=TIMEZONE_SCHEMA,
    )
    session_id: str | None = Field(default=None, pattern=ID_PATTERN, description="Every run continues this session.")
    enabled: bool = True
    end_time: datetime | None = Field(default=None, description="No tick after this time (ISO 8601; naive = UTC).")
    multitask_strategy: MultitaskStrategy = Field(
        default=DEFAULT_STRATEGY, description="A tick while the session still runs the previous one (see runs)."
    )
    webhook: str | None = Field(default=None, max_length=2048, description="Each run's final record is POSTed here.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class CronPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str | None = Field(default=None, pattern=TEXT_PATTERN)
    schedule: str | None = Field(default=None, max_length=200, json_schema_extra=SCHEDULE_SCHEMA)
    timezone: str | None = Field(default=None, max_length=100, json_schema_extra=TIMEZONE_SCHEMA)
    enabled: bool | None = None
    end_time: datetime | None = None
    multitask_strategy: MultitaskStrategy | None = None
    webhook: str | None = Field(default=None, max_length=2048)
    metadata: dict[str, Any] | None = None


class CronOut(BaseModel):
    cron_id: str
    tenant: str
    user: str
    template: str
    session_id: str | None
    input: str
    schedule: str
    timezone: str
    next_run_at: float | None
    enabled: bool
    end_time: float | None
    multitask_strategy: str
    webhook: str | None
    metadata: dict[str, Any]
    created_at: float
    updated_at: float
    last_tick_at: float | None
    last_run_id: str | None
    last_error: dict[str, Any] | None


class CronList(BaseModel):
    crons: list[CronOut]
    limit: int
    offset: int


def crons_of(runtime: Runtime) -> Crons:
    if runtime.crons is None:
        raise ServiceUnavailableError("schedules are not available in this process", retry_after=1.0)
    return runtime.crons


def unix_time(moment: datetime | None) -> float | None:
    """Unix seconds of an ISO time (a naive one is UTC)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


@router.post(
    "/v1/crons",
    status_code=201,
    response_model=CronOut,
    responses=errors(401, 403, 404, 409, 413, 422, 503),
    summary="Schedule runs of a template",
    description=(
        "Starts a background run of `template` on `input` at every tick of `schedule` in `timezone`. "
        "Ticks missed while no server ran fire once, not as a burst. 422 names a bad `schedule` or "
        "`timezone`; 404: unknown template; 409: the tenant holds the most schedules allowed."
    ),
)
async def create_cron(body: CronCreate, principal: CurrentPrincipal, runtime: CurrentRuntime) -> Any:
    spec = CronSpec(
        template=body.template,
        input=body.input,
        schedule=body.schedule,
        timezone=body.timezone,
        session_id=body.session_id,
        enabled=body.enabled,
        end_time=unix_time(body.end_time),
        multitask_strategy=body.multitask_strategy,
        webhook=body.webhook,
        metadata=body.metadata,
    )
    return (await crons_of(runtime).create(principal, spec)).public()


@router.get("/v1/crons", response_model=CronList, responses=errors(401, 422, 503), summary="The caller's schedules")
async def list_crons(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    template: Annotated[str | None, Query(pattern=TEMPLATE_PATTERN)] = None,
    session_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    enabled: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Any:
    query = CronFilter(
        tenant=principal.tenant, template=template, session_id=session_id, enabled=enabled, limit=limit, offset=offset
    )
    found = await crons_of(runtime).find(principal, query)
    return {"crons": [s.public() for s in found], "limit": limit, "offset": offset}


@router.get("/v1/crons/{cron_id}", response_model=CronOut, responses=errors(401, 404, 422, 503), summary="One schedule")
async def get_cron(cron_id: CronId, principal: CurrentPrincipal, runtime: CurrentRuntime) -> Any:
    return (await crons_of(runtime).get(principal, cron_id)).public()


@router.patch(
    "/v1/crons/{cron_id}",
    response_model=CronOut,
    responses=errors(401, 403, 404, 413, 422, 503),
    summary="Change a schedule",
    description="The next tick is computed again from now (a re-enabled schedule skips what it missed).",
)
async def patch_cron(cron_id: CronId, body: CronPatch, principal: CurrentPrincipal, runtime: CurrentRuntime) -> Any:
    values = body.model_dump(exclude_unset=True, exclude={"end_time", "webhook"})
    values = {k: v for k, v in values.items() if v is not None}
    if "webhook" in body.model_fields_set:  # null removes it
        values["webhook"] = body.webhook
    clear = "end_time" in body.model_fields_set and body.end_time is None
    if body.end_time is not None:
        values["end_time"] = unix_time(body.end_time)
    changes = CronChanges(values=values, clear_end_time=clear)
    return (await crons_of(runtime).update(principal, cron_id, changes)).public()


@router.delete(
    "/v1/crons/{cron_id}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 404, 422, 503),
    summary="Delete a schedule",
)
async def delete_cron(cron_id: CronId, principal: CurrentPrincipal, runtime: CurrentRuntime) -> Response:
    await crons_of(runtime).delete(principal, cron_id)
    return Response(status_code=204)
