"""Run records in the Agent Protocol's JSON shape (LangGraph's ``Run``, as ``langgraph-sdk`` types it),
and the answer of a run that failed (``{"__error__": ...}``, what the SDK's ``wait`` raises on)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from agent_runtime.agents.assistants import assistant_id
from agent_runtime.runs.multitask import DEFAULT_STRATEGY
from agent_runtime.runs.record import Run
from agent_runtime.runs.recorder import HISTORY_KEY, KWARGS_KEY
from agent_runtime.runs.thread_outcome import WAITED_KEY
from agent_runtime.server.routes.agent_protocol._run_input import turn_out
from agent_runtime.server.routes.agent_protocol._shapes import jsonable
from agent_runtime.types import ChatTurn

__all__ = ["AP_STATUS", "ap_status", "iso", "run_error_out", "run_out"]

AP_STATUS: Final[dict[str, str]] = {
    "pending": "pending",
    "running": "running",
    "success": "success",
    "error": "error",
    "timeout": "timeout",
    "interrupted": "interrupted",
    "cancelled": "interrupted",
}
"""LangGraph has no ``cancelled``: a run stopped by a cancel is ``interrupted`` there, as one waiting
for a human (the record keeps the difference; ``cancel_reason`` tells it)."""


def ap_status(status: str) -> str:
    return AP_STATUS.get(status, "error")


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def run_out(run: Run) -> dict[str, Any]:
    """A ``Run``: ids, times (ISO-8601), status, the client's metadata, multitask strategy, kwargs."""
    kwargs = dict(run.metadata.get(KWARGS_KEY) or {})
    command = kwargs.pop("command", None)
    kwargs.pop(WAITED_KEY, None)
    if command is None:
        earlier = [turn_out(ChatTurn.model_validate(t)) for t in run.metadata.get(HISTORY_KEY) or ()]
        kwargs["input"] = {"messages": [*earlier, {"type": "human", "content": run.input}]}
    else:
        kwargs["input"] = None
    kwargs["command"] = command
    kwargs["temporary"] = kwargs.get("on_completion", "keep") == "delete"
    out: dict[str, Any] = {
        "run_id": run.run_id,
        "thread_id": run.session_id,
        "assistant_id": assistant_id(run.template),
        "created_at": iso(run.created_at),
        "updated_at": iso(run.ended_at or run.started_at or run.created_at),
        "status": ap_status(run.status),
        "metadata": jsonable(run.metadata.get("client") or {}),
        "multitask_strategy": kwargs.get("multitask_strategy", DEFAULT_STRATEGY),
        "kwargs": jsonable(kwargs),
    }
    if run.status == "cancelled":
        out["cancel_reason"] = "cancelled"
    return out


def run_error_out(run: Run) -> dict[str, Any]:
    """The ``wait`` / ``join`` answer of a run that did not succeed (LangGraph's ``__error__``)."""
    error = run.error or {}
    code = str(error.get("code") or run.status)
    return {"__error__": {"error": code, "message": str(error.get("message") or f"run {run.status}")}}
