"""The event envelope and the versioned catalogue of the runtime's own events.

Every event on every backend is the same JSON envelope; ``payload`` is free-form, but the runtime's
own types have a payload model here so producers and consumers agree on field names. Custom types
(``document.uploaded``) are allowed: any lowercase dotted name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent_runtime.errors import ValidationError
from agent_runtime.types import new_id

__all__ = [
    "CATALOGUE",
    "MAX_EVENT_BYTES",
    "Event",
    "EventType",
    "QuotaExceeded",
    "RateLimitRejected",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunQueued",
    "RunStarted",
    "SessionCreated",
    "SessionExpired",
    "ToolCalled",
    "make_event",
]

MAX_EVENT_BYTES: Final = 1_000_000
"""Envelopes larger than this are refused at publish time (Kafka's default message limit)."""

_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class Event(BaseModel):
    """One event: who/what/when plus a JSON payload. Immutable once built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=lambda: new_id("evt"))
    type: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    tenant: str | None = None
    source: str = "agent-runtime"
    correlation_id: str | None = None
    run_id: str | None = None
    schema_version: int = 1
    payload: dict[str, Any] = Field(default_factory=dict)
    depth: int = Field(default=0, ge=0)
    """How many triggered runs led to this event; triggers refuse to fire past their depth limit."""

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        if len(value) > 200 or not _TYPE_RE.fullmatch(value):
            raise ValueError("event type must be lowercase dotted words, e.g. 'run.completed'")
        return value

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> Event:
        """Parse an envelope, raising our ``ValidationError`` (never pydantic's) on bad input."""
        try:
            return cls.model_validate_json(data)
        except ValueError as exc:
            raise ValidationError(f"malformed event: {exc.__class__.__name__}") from exc

    def caused(self, type: str, payload: dict[str, Any] | None = None, **fields: Any) -> Event:
        """A follow-up event in the same causal chain: same tenant and correlation, ``depth + 1``."""
        fields.setdefault("tenant", self.tenant)
        fields.setdefault("correlation_id", self.correlation_id or self.id)
        return make_event(type, payload or {}, depth=self.depth + 1, **fields)


class EventType:
    """Names of the runtime's own events (the catalogue keys)."""

    SESSION_CREATED: Final = "session.created"
    SESSION_EXPIRED: Final = "session.expired"
    RUN_STARTED: Final = "run.started"
    RUN_COMPLETED: Final = "run.completed"
    RUN_FAILED: Final = "run.failed"
    RUN_QUEUED: Final = "run.queued"
    RUN_CANCELLED: Final = "run.cancelled"
    TOOL_CALLED: Final = "tool.called"
    QUOTA_EXCEEDED: Final = "quota.exceeded"
    RATELIMIT_REJECTED: Final = "ratelimit.rejected"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")


class SessionCreated(_Payload):
    session_id: str
    user: str | None = None
    template: str | None = None


class SessionExpired(_Payload):
    session_id: str
    user: str | None = None


class RunStarted(_Payload):
    template: str
    session_id: str | None = None
    user: str | None = None
    model: str | None = None


class RunCompleted(_Payload):
    template: str
    output: str = ""
    session_id: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    duration_ms: float | None = None
    tool_calls: int = 0
    steps: list[dict[str, Any]] | None = None
    """Workflows only: one entry per step run (step, template, model, status, usage, tool_calls)."""


class RunFailed(_Payload):
    template: str
    error_code: str
    message: str = ""
    session_id: str | None = None


class RunQueued(_Payload):
    template: str
    session_id: str | None = None
    user: str | None = None


class RunCancelled(_Payload):
    template: str
    status_before: str
    """``pending`` or ``running``: what the run was doing when it was cancelled."""
    session_id: str | None = None


class ToolCalled(_Payload):
    tool: str
    status: str = "ok"
    duration_ms: float | None = None


class QuotaExceeded(_Payload):
    scope: str
    limit: float | None = None
    user: str | None = None


class RateLimitRejected(_Payload):
    scope: str
    retry_after: float | None = None
    user: str | None = None


CATALOGUE: Final[dict[str, tuple[int, type[BaseModel]]]] = {
    EventType.SESSION_CREATED: (1, SessionCreated),
    EventType.SESSION_EXPIRED: (1, SessionExpired),
    EventType.RUN_STARTED: (1, RunStarted),
    EventType.RUN_COMPLETED: (1, RunCompleted),
    EventType.RUN_FAILED: (1, RunFailed),
    EventType.RUN_QUEUED: (1, RunQueued),
    EventType.RUN_CANCELLED: (1, RunCancelled),
    EventType.TOOL_CALLED: (1, ToolCalled),
    EventType.QUOTA_EXCEEDED: (1, QuotaExceeded),
    EventType.RATELIMIT_REJECTED: (1, RateLimitRejected),
}
"""type -> (schema version, payload model) for the runtime's own events."""


def make_event(type: str, payload: dict[str, Any] | BaseModel | None = None, **fields: Any) -> Event:
    """Build an event; catalogue types get their payload validated and their schema version set.

    Raises:
        ValidationError: the type is malformed or the payload does not fit the catalogue model.
    """
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else dict(payload or {})
    spec = CATALOGUE.get(type)
    try:
        if spec is not None:
            version, model = spec
            data = model.model_validate(data).model_dump(mode="json", exclude_none=True)
            fields.setdefault("schema_version", version)
        return Event(type=type, payload=data, **fields)
    except ValueError as exc:
        raise ValidationError(f"invalid {type!r} event: {exc}") from exc
