"""``agent-runtime``: serve, run, templates, keys, usage, consume.

Commands and flags are an outside contract (scripts rely on them): add, never rename.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.settings import load_settings

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
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


@main.command()
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default 8000).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option(
    "--max-concurrent-runs", default=None, type=click.IntRange(1, 10_000), help="Background runs each worker executes."
)
def serve(host: str | None, port: int | None, workers: int, max_concurrent_runs: int | None) -> None:
    """Serve the HTTP API (OpenAI-compatible /v1/chat/completions included) and execute queued runs."""
    from agent_runtime.cli_worker import settings_with_concurrency
    from agent_runtime.server.serve import serve as run_server

    settings = settings_with_concurrency(max_concurrent_runs)
    run_server(settings, host=host or settings.host, port=port or settings.port, workers=workers)


@main.command()
@click.argument("template")
@click.argument("input_text", metavar="INPUT")
@click.option("--stream", is_flag=True, help="Print tokens as they arrive.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with output, usage, tool_calls, ids.")
@click.option("--model", default=None, help="Model for this run (e.g. offline, openai:gpt-4o-mini).")
@click.option("--session", "session_id", default=None, help="Continue (or start) this session.")
def run(template: str, input_text: str, stream: bool, as_json: bool, model: str | None, session_id: str | None) -> None:
    """Run TEMPLATE on INPUT and print the answer and a usage line."""
    from agent_runtime.runtime import Runtime
    from agent_runtime.types import AgentContext, AgentResult, Principal

    async def go() -> None:
        runtime = await Runtime.create(load_settings(), collect_events=True)
        try:
            principal = Principal(tenant="default", user="cli", scopes=frozenset({"admin"}))
            context = AgentContext(
                input=input_text,
                template=template,
                model=model,
                session_id=session_id,
                principal=principal,
                metadata={"create_session": True, "source": "cli"},
            )
            result: AgentResult | None = None
            if stream and not as_json:
                step: str | None = None
                async for event in runtime.executor.execute_stream(context):
                    if event.step is not None and event.step != step:  # a workflow moved to another step
                        step = event.step
                        click.echo(f"\n== step {step} ==", err=True)
                    if event.type == "token":
                        click.echo(event.text, nl=False)
                    elif event.type == "tool_call":
                        click.echo(f"\n[tool] {event.data['name']}({json.dumps(event.data['args'])})", err=True)
                    elif event.type == "tool_result":
                        click.echo(f"[tool result] {event.data['output'][:200]}", err=True)
                    elif event.type == "final":
                        result = AgentResult.model_validate(event.data)
                    elif event.type == "error":
                        raise _error_from(event.data)
                click.echo()
            else:
                result = await runtime.executor.execute_with_retry(context)
                if not as_json:
                    click.echo(result.output)
            assert result is not None
            if result.status == "interrupted":
                from agent_runtime.cli_workflows import echo_interrupt

                echo_interrupt(result)
            if as_json:
                click.echo(json.dumps(_run_json(result)))
            else:
                click.echo(_usage_line(result), err=True)
        finally:
            await runtime.aclose()

    _run(go())


def _error_from(data: dict[str, Any]) -> AgentRuntimeError:
    error = AgentRuntimeError(str(data.get("message", "run failed")))
    error.code = str(data.get("code", "run_failed"))
    return error


def _run_json(result: Any) -> dict[str, Any]:
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


def _usage_line(result: Any) -> str:
    usage = result.usage
    summary = result.metadata.get("callbacks") or {}
    return (
        f"[{result.model}] run {result.run_id} · tokens in {usage.input_tokens} out {usage.output_tokens} "
        f"total {usage.total_tokens} · cost ${usage.cost_usd:.6f} · tool calls {len(result.tool_calls)}"
        f" · llm calls {summary.get('llm_calls', '?')} · {result.duration_ms:.1f} ms"
        + (f" · session {result.session_id}" if result.session_id else "")
    )


@main.command()
@click.option("--json", "as_json", is_flag=True)
def templates(as_json: bool) -> None:
    """List the registered templates."""
    from agent_runtime.agents.factory import AgentFactory

    factory = AgentFactory(load_settings())
    items = factory.list_templates()
    if as_json:
        click.echo(json.dumps([t.public_dict() for t in items], indent=2))
        return
    for t in items:
        tools = ",".join(t.tools) or "-"
        click.echo(f"{t.name:<16} model={factory.model_for(t):<12} tools={tools:<20} {t.description}")


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


def _register_commands() -> None:
    from agent_runtime import cli_admin, cli_migrate, cli_runs, cli_worker, cli_workflows  # noqa: F401  (keys, usage, migrate, runs, worker, resume)

    with contextlib.suppress(ImportError):
        importlib.import_module("agent_runtime.event_bus.cli")  # registers consume


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    # ``python -m agent_runtime.cli``: the subcommand modules registered themselves on the imported
    # ``agent_runtime.cli`` module, not on this ``__main__`` copy of it.
    from agent_runtime.cli import main as entry_point

    entry_point()
