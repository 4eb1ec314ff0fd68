"""The run record: one durable object per run, whatever started it (HTTP, chat completions, CLI, background)."""

from __future__ import annotations

import time
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

from agent_runtime.errors import BackendError
from agent_runtime.types import Principal

__all__ = ["ACTIVE", "TERMINAL", "CancelAction", "Run", "RunStatus", "WebhookOutcome", "status_for_error"]

RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted", "cancelled"]
CancelAction = Literal["interrupt", "rollback"]
"""``interrupt`` keeps what a cancelled run checkpointed; ``rollback`` drops it, and the run's record."""
ACTIVE: Final[frozenset[str]] = frozenset({"pending", "running"})
TERMINAL: Final[frozenset[str]] = frozenset({"success", "error", "timeout", "interrupted", "cancelled"})
"""``interrupted`` is terminal for the record: the run waits for approval and is resumed as a new call."""


class WebhookOutcome(BaseModel):
    """How the POST of a finished run to its ``webhook`` went (``runs.webhooks``)."""

    status: Literal["pending", "delivered", "failed"] = "pending"
    attempts: int = 0
    last_status: int | None = None
    """The receiver's last HTTP status (``None``: it never answered)."""
    last_error: str | None = None
    delivered_at: float | None = None


class Run(BaseModel):
    """A run as stored in the state backend (``RunRecordStore``)."""

    run_id: str
    tenant: str
    user: str | None = None
    template: str
    session_id: str | None = None
    input: str
    model: str | None = None
    status: RunStatus = "pending"
    background: bool = False
    attempts: int = 0
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    worker: str | None = None
    """``host:pid`` of the worker that runs (or ran) it."""
    timeout_s: float | None = None
    output: str | None = None
    error: dict[str, Any] | None = None
    """``{"code": ..., "message": ...}`` of a run that did not succeed."""
    usage: dict[str, Any] | None = None
    cancel_requested: bool = False
    cancel_action: CancelAction | None = None
    """With ``cancel_requested``: what the worker executing the run does with its progress."""
    not_before: float | None = None
    """A pending run is not started before this time (``after_seconds``)."""
    webhook: str | None = None
    """Where the final record is POSTed once the run ended."""
    webhook_delivery: WebhookOutcome | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    principal: Principal | None = Field(default=None, exclude=False)
    """Who submitted it; a background run executes as this principal."""
    lease_until: float | None = None
    """While ``running`` on a queue worker: until when ``worker`` holds the run (renewed by its heartbeat);
    once past, any worker may claim it again (``runs.lease``)."""
    recoveries: int = 0
    """How many times a worker took this run over from a worker that died holding it."""

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def public(self) -> dict[str, Any]:
        """The record as the API shows it (the principal's scopes and limits stay private)."""
        return self.model_dump(mode="json", exclude={"principal"})

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Run:
        try:
            return cls.model_validate_json(raw)
        except ValueError as exc:
            raise BackendError("corrupt run record in the run store") from exc


def status_for_error(code: str) -> RunStatus:
    """The final status of a run that failed with this error code."""
    if code == "timeout":
        return "timeout"
    if code == "cancelled":
        return "cancelled"
    return "error"
