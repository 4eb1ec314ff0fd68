"""The ``agent-runtime`` command group and what its commands share (every command module imports this,
never the package: the package imports the command modules to register them)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from agent_runtime.errors import AgentRuntimeError

__all__ = ["error_from", "main", "parse_when", "run_json", "run_sync", "usage_line"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; its ``AgentRuntimeError`` is reported by the group (``_Commands``)."""
    return asyncio.run(coro)


class _Commands(click.Group):
    """The command group: any command (and subgroup) failing with an ``AgentRuntimeError`` prints one
    ``error [code]: message`` line on stderr and exits 2 (caller's mistake) or 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AgentRuntimeError as exc:
            click.echo(f"error [{exc.code}]: {exc.message}", err=True)
            ctx.exit(2 if exc.status_code < 500 else 1)


@click.group(cls=_Commands)
@click.version_option(package_name="agent-runtime")
def main() -> None:
    """A production runtime for LangChain 1.x agents."""


def parse_when(value: str | None) -> datetime | None:
    """``2026-12-31``, an ISO timestamp, or a duration from now: ``30d``, ``12h``, ``15m``."""
    if value is None:
        return None
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.now(UTC) + timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither an ISO date/time nor a duration like 30d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def error_from(data: dict[str, Any]) -> AgentRuntimeError:
    error = AgentRuntimeError(str(data.get("message", "run failed")))
    error.code = str(data.get("code", "run_failed"))
    return error


def run_json(result: Any) -> dict[str, Any]:
    usage = result.usage
    return {
        "output": result.output,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "cost_usd": usage.cost_usd,
        },
        "tool_calls": [call.model_dump() for call in result.tool_calls],
        "run_id": result.run_id,
        "session_id": result.session_id,
        "status": result.status,
        "model": result.model,
        "duration_ms": round(result.duration_ms, 2),
        "callbacks": result.metadata.get("callbacks"),
        "steps": result.metadata.get("steps"),
        "interrupts": result.metadata.get("interrupts"),
        "resume_id": result.metadata.get("resume_id"),
    }


def usage_line(result: Any) -> str:
    usage = result.usage
    summary = result.metadata.get("callbacks") or {}
    return (
        f"[{result.model}] run {result.run_id} · tokens in {usage.input_tokens} out {usage.output_tokens} "
        f"total {usage.total_tokens} · cost ${usage.cost_usd:.6f} · tool calls {len(result.tool_calls)}"
        f" · llm calls {summary.get('llm_calls', '?')} · {result.duration_ms:.1f} ms"
        + (f" · session {result.session_id}" if result.session_id else "")
    )
