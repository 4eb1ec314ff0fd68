"""Request and response bodies of the REST API, so ``/openapi.json`` describes every payload exactly."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent_runtime.types import ToolCallRecord, Usage

__all__ = [
    "ID_PATTERN",
    "TEMPLATE_PATTERN",
    "TEXT_PATTERN",
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "MessageList",
    "MessageOut",
    "QuotaOut",
    "ReadyCheck",
    "ReadyResponse",
    "RunRequest",
    "RunResponse",
    "SessionCreate",
    "SessionList",
    "SessionOut",
    "TemplateList",
    "TemplateOut",
    "UsageReport",
    "UsageRowOut",
]

ID_PATTERN = r"^[A-Za-z0-9_.@:\-]{1,200}$"
"""Ids (sessions, users) end up in Redis keys and SQL rows: the alphabet every backend accepts."""
TEMPLATE_PATTERN = r"^[a-z][a-z0-9_\-]{0,63}$"
"""Template names (``AgentTemplate`` refuses any other)."""
TEXT_PATTERN = r"^[^\x00]*[^\x00\s\x1c-\x1f\x85][^\x00]*$"
"""Run input: something besides whitespace (Python's notion of it) and no NUL character."""


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable error code, e.g. `session_not_found`.")
    message: str
    type: str = Field(description="OpenAI-style error category, e.g. `invalid_request_error`.")
    retry_after: float | None = Field(default=None, description="Seconds to wait (429 and 503).")
    details: dict[str, Any] | None = None
    request_id: str | None = None
    param: str | None = Field(default=None, description="The request parameter at fault (OpenAI's `param`).")
    errors: list[dict[str, str]] | None = Field(default=None, description="Field errors of a 422 (400 on /v1/chat).")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class HealthResponse(BaseModel):
    status: Literal["ok"]
    pid: int = Field(description="Worker process id, so a fleet's probes can tell workers apart.")


class ReadyCheck(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None = None


class ReadyResponse(BaseModel):
    status: Literal["ok", "unavailable", "draining"]
    checks: dict[str, ReadyCheck]


class TemplateOut(BaseModel):
    name: str
    description: str
    model: str = Field(description="The model this template runs on when a request names none.")
    tools: list[str]
    memory: str
    workflow: str | None
    max_output_tokens: int
    timeout_s: float | None
    max_retries: int
    tags: list[str]


class TemplateList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TemplateOut]


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str | None = Field(default=None, pattern=TEMPLATE_PATTERN, description="Template the session is for.")
    session_id: str | None = Field(default=None, pattern=ID_PATTERN, description="Choose the id (default: random).")
    ttl_s: float | None = Field(default=None, gt=0, le=365 * 24 * 3600, description="Lifetime; slides on each run.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class SessionOut(BaseModel):
    id: str
    tenant: str
    user_id: str
    template: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    ttl_s: float
    status: str
    metadata: dict[str, Any]
    message_count: int


class SessionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SessionOut]


class MessageOut(BaseModel):
    role: str
    content: str
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class MessageList(BaseModel):
    object: Literal["list"] = "list"
    session_id: str
    data: list[MessageOut]


def _SET(name: str, schema: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 - reads as a schema constant
    return {"required": [name], "properties": {name: schema}}


_BACKGROUND = _SET("background", {"const": True})


class RunRequest(BaseModel):
    # what the route answers 422 for is said in the schema too, for clients and fuzzers: a background run
    # is not streamed; webhook and after_seconds need background; a foreground multitask_strategy a session
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "allOf": [
                {
                    "not": {
                        "required": ["background", "stream"],
                        "properties": {"background": {"const": True}, "stream": {"const": True}},
                    }
                },
                {"if": _SET("webhook", {"type": "string"}), "then": _BACKGROUND},
                {"if": _SET("after_seconds", {"exclusiveMinimum": 0}), "then": _BACKGROUND},
                {
                    "if": _SET("multitask_strategy", {"type": "string"}),
                    "then": {"anyOf": [_BACKGROUND, _SET("session_id", {"type": "string"})]},
                },
            ]
        },
    )

    template: str = Field(pattern=TEMPLATE_PATTERN)
    input: str = Field(
        pattern=TEXT_PATTERN, description="The user's message; longer than the server's limit gives 413."
    )
    session_id: str | None = Field(default=None, pattern=ID_PATTERN, description="An existing session to continue.")
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Model override; anything but `offline` needs the `models:override` scope.",
    )
    stream: bool = Field(default=False, description="Answer with a `text/event-stream` of typed events.")
    stream_coalesce: bool = Field(
        default=True,
        description=(
            "Streaming: tokens that queued up while the client or the worker was behind go out as one `token` "
            "event (its `tokens` field counts them); `false` sends one event per token."
        ),
    )
    background: bool = Field(
        default=False, description="Queue the run and answer 202 with its record at once (not with `stream`)."
    )
    timeout_s: float | None = Field(default=None, ge=0.1, le=3600, description="Tighter run timeout (504 past it).")
    metadata: dict[str, Any] = Field(default_factory=dict)
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] | None = Field(
        default=None,
        description=(
            "When `session_id` is busy with another run: `reject` (409, the default of background runs), "
            "`enqueue` (run after it, in order), `interrupt` (cancel it, keep its progress, then run), "
            "`rollback` (cancel it, drop its progress and record, then run). Unset on a foreground run: "
            "it waits for the session's lock as before."
        ),
    )
    webhook: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Background runs: the URL the final record is POSTed to, signed; its host must be allowed.",
    )
    after_seconds: float = Field(
        default=0.0, ge=0, le=86_400, description="Background runs: start no sooner than this many seconds from now."
    )


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["interrupt", "rollback"] = Field(
        default="interrupt",
        description="`interrupt` keeps what the run checkpointed; `rollback` drops it and the run's record.",
    )


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decisions: Literal["approve", "reject"] | dict[str, Any] | list[dict[str, Any] | str] = Field(
        description=(
            '`"approve"`, `"reject"`, `{"type": "edit", "args": {...}}`, `{"type": "reject", "message": "..."}`, '
            "a list with one decision per pending call, or a map from interrupt id to decision."
        )
    )
    stream: bool = False


class RunResponse(BaseModel):
    run_id: str
    template: str
    model: str
    session_id: str | None
    status: str
    output: str
    usage: Usage
    tool_calls: list[ToolCallRecord]
    duration_ms: float
    time_to_first_token_ms: float | None = None
    attempts: int
    metadata: dict[str, Any]


class RunRecordOut(BaseModel):
    """A run's durable record (``GET /v1/runs/{run_id}``)."""

    run_id: str
    tenant: str
    user: str | None = None
    template: str
    session_id: str | None = None
    input: str
    model: str | None = None
    status: Literal["pending", "running", "success", "error", "timeout", "interrupted", "cancelled"]
    background: bool
    attempts: int
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    worker: str | None = None
    timeout_s: float | None = None
    output: str | None = None
    error: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    cancel_requested: bool = False
    cancel_action: Literal["interrupt", "rollback"] | None = None
    not_before: float | None = None
    """A pending run is not started before this time (``after_seconds``)."""
    webhook: str | None = None
    webhook_delivery: dict[str, Any] | None = None
    """``{status: pending | delivered | failed, attempts, last_status, last_error, delivered_at}``."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    lease_until: float | None = None
    """While running on a queue worker: until when its worker holds it (renewed by its heartbeat)."""
    recoveries: int = 0
    """Times a worker took the run over from a worker that died executing it."""


class RunList(BaseModel):
    runs: list[RunRecordOut]
    limit: int
    offset: int


class UsageRowOut(BaseModel):
    key: str
    runs: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    total_tokens: int
    cost_usd: float


class QuotaOut(BaseModel):
    scope: Literal["key", "user", "tenant"]
    kind: Literal["daily_tokens", "monthly_usd"]
    limit: float
    spent: float
    reserved: float
    remaining: float
    resets_at: datetime


class SpendOut(BaseModel):
    today_usd: float
    month_usd: float


class UsageReport(BaseModel):
    tenant: str
    user: str | None = Field(description="`null` when an admin asked for the whole tenant.")
    by: str
    rows: list[UsageRowOut]
    totals: UsageRowOut
    spend: SpendOut
    quotas: list[QuotaOut]


# -- OpenAI Chat Completions ---------------------------------------------------------------------


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]
