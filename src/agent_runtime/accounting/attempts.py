"""What an ending attempt is charged: usage of failed runs, the reaper's charge, shielded writes, and the
``context.state`` keys that carry accounting state between the middlewares and the run registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.types import AgentContext, AgentResult, Usage

__all__ = [
    "REAPED_CHARGE_KEY",
    "REGISTRY_FINISH_KEY",
    "RESERVATION_KEY",
    "error_usage",
    "failed_result",
    "reaped_charge",
    "result_tokens",
    "run_shielded",
]

_log = logging.getLogger("agent_runtime.middleware")

REGISTRY_FINISH_KEY = "runs.finish"
"""``context.state``: the future of the drop of the attempt's run-registry record (``RunTracker.finished``)."""
RESERVATION_KEY = "cost.reservation"
"""``context.state``: the attempt's quota ``Reservation`` (set by ``CostTrackingMiddleware``, read by
``RunTracker`` so a reaper can charge it)."""
REAPED_CHARGE_KEY = "runs.reaped_charge"
"""``context.state``: ``(tokens, usd_micros)`` a reaper charged for this attempt's reservation after
claiming it as abandoned while its worker was stalled (set by ``RunTracker.finished``)."""


def error_usage(exc: BaseException) -> Usage:
    """Partial usage the executor attached to a failed run (``exc.details["usage"]``), else zero."""
    details: Any = getattr(exc, "details", None)
    raw = details.get("usage") if isinstance(details, dict) else None
    if isinstance(raw, Usage):
        return raw.model_copy()  # the recorder prices its copy: the error keeps what the executor said
    if isinstance(raw, dict):
        try:
            return Usage.model_validate(raw)
        except ValueError:
            _log.warning("ignoring malformed partial usage on %s", type(exc).__name__)
    return Usage()


def result_tokens(usage: Usage) -> int:
    return usage.total_tokens or usage.input_tokens + usage.output_tokens


async def run_shielded(awaitable: Awaitable[Any], what: str) -> None:
    """Finish an accounting write even while the run's task is being cancelled, and never let its
    failure mask the run's own error (a reservation left behind expires by its TTL)."""
    try:
        await asyncio.shield(awaitable)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _log.warning("%s failed while a run was ending: %s", what, type(exc).__name__)


async def reaped_charge(context: AgentContext) -> tuple[int, int] | None:
    """What a reaper charged for this attempt, if it claimed it; waits for the registry's answer (the
    record's drop, shielded, may still be in flight when a cancelled run settles)."""
    pending = context.state.get(REGISTRY_FINISH_KEY)
    if isinstance(pending, asyncio.Future) and not pending.done():
        with contextlib.suppress(Exception):
            await asyncio.shield(pending)
    charge = context.state.get(REAPED_CHARGE_KEY)
    return charge if isinstance(charge, tuple) else None


def failed_result(context: AgentContext, exc: BaseException, usage: Usage) -> AgentResult:
    """A result standing for a run that raised, so usage hooks see failed attempts too."""
    code = exc.code if isinstance(exc, AgentRuntimeError) else "internal_error"
    status = "cancelled" if isinstance(exc, asyncio.CancelledError) or code == "cancelled" else "failed"
    details: Any = getattr(exc, "details", None) or {}
    steps = details.get("steps")  # a workflow's finished steps, each priced by its own model
    return AgentResult(
        run_id=context.run_id,
        template=context.template,
        model=str(details.get("model") or context.model or "unknown"),
        metadata={"steps": steps} if isinstance(steps, list) else {},
        output="",
        status=status,
        session_id=context.session_id,
        usage=usage,
        attempts=context.attempt,
        error={"code": code, "message": str(exc)[:500]},
    )
