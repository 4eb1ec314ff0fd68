"""The schedule record and its clock: a standard five-field cron expression in an IANA time zone.

Expressions are parsed by croniter, zones by ``zoneinfo``; a bad one is a ``ValidationError`` naming
its field (``param``: ``schedule`` or ``timezone``), so every API answers 422 naming it.
Ticks are computed on wall-clock time in the schedule's zone (``0 9 * * *`` in ``Europe/Paris`` is 09:00
Paris time in winter and in summer) and stored as Unix seconds.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from pydantic import BaseModel, Field

from agent_runtime.errors import BackendError, ValidationError
from agent_runtime.runs.multitask import DEFAULT_STRATEGY, MultitaskStrategy
from agent_runtime.types import Principal

__all__ = ["MAX_EXPRESSION_CHARS", "Schedule", "check_expression", "check_timezone", "new_cron_id", "next_tick"]

MAX_EXPRESSION_CHARS: Final = 200


def new_cron_id() -> str:
    return str(uuid.uuid4())


def check_expression(expression: str) -> str:
    """The expression, stripped; ``ValidationError`` (param ``schedule``) unless it is five cron fields."""
    cleaned = " ".join(expression.split())
    if len(cleaned) > MAX_EXPRESSION_CHARS or len(cleaned.split(" ")) != 5 or not croniter.is_valid(cleaned):
        raise ValidationError(
            f"schedule {expression[:MAX_EXPRESSION_CHARS]!r} is not a cron expression of five fields"
            " (minute hour day-of-month month day-of-week), e.g. '*/15 * * * *'",
            details={"param": "schedule"},
        )
    return cleaned


def check_timezone(name: str) -> ZoneInfo:
    """The zone; ``ValidationError`` (param ``timezone``) for a name the IANA database does not have."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValidationError(
            f"timezone {name[:100]!r} is not an IANA time zone (e.g. 'UTC', 'Europe/Paris')",
            details={"param": "timezone"},
        ) from exc


def next_tick(expression: str, timezone: str, after: float, end_time: float | None = None) -> float | None:
    """The first tick strictly after ``after`` (Unix seconds), or ``None`` once past ``end_time``."""
    start = datetime.fromtimestamp(after, check_timezone(timezone))
    try:
        following = float(croniter(check_expression(expression), start).get_next(float))
    except CroniterError as exc:  # e.g. '0 0 30 2 *': a valid expression of a day that never comes
        raise ValidationError(f"schedule {expression!r} never fires", details={"param": "schedule"}) from exc
    if end_time is not None and following > end_time:
        return None
    return following


class Schedule(BaseModel):
    """A cron schedule as stored in the state backend (``CronStore``)."""

    cron_id: str = Field(default_factory=new_cron_id)
    tenant: str
    user: str
    principal: Principal
    """Who created it: the runs it starts are this principal's (scopes, limits, quotas, ledger)."""
    template: str
    session_id: str | None = None
    """Every run continues this session (a LangGraph thread); ``None``: each run is stateless."""
    input: str
    schedule: str
    timezone: str = "UTC"
    next_run_at: float | None = None
    """The tick due next (Unix seconds); ``None`` when the schedule has no tick left (``end_time``)."""
    enabled: bool = True
    end_time: float | None = None
    multitask_strategy: MultitaskStrategy = DEFAULT_STRATEGY
    """What a run does when the session's previous run is still going (``runs.multitask``)."""
    webhook: str | None = None
    """Each run's final record is POSTed here (``runs.webhooks``; checked against the allow-list)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    payload: dict[str, Any] = Field(default_factory=dict)
    """The Agent Protocol run payload it was created with (echoed back as LangGraph's ``payload``)."""
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    last_tick_at: float | None = None
    last_run_id: str | None = None
    last_error: dict[str, Any] | None = None
    """``{"code", "message"}`` of the last tick that could not start its run."""

    def public(self) -> dict[str, Any]:
        """The record as the native API shows it (the principal's scopes and limits stay private)."""
        return self.model_dump(mode="json", exclude={"principal", "payload"})

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Schedule:
        try:
            return cls.model_validate_json(raw)
        except ValueError as exc:
            raise BackendError("corrupt schedule in the cron store") from exc
