"""``agent-runtime serve``, ``run`` and ``templates``."""

from __future__ import annotations

import json

import click

from agent_runtime.cli.group import error_from, main, run_json, run_sync, usage_line
from agent_runtime.settings import load_settings


@main.command()
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default 8000).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option(
    "--max-concurrent-runs", default=None, type=click.IntRange(1, 10_000), help="Background runs each worker executes."
)
def serve(host: str | None, port: int | None, workers: int, max_concurrent_runs: int | None) -> None:
    """Serve the HTTP API (OpenAI-compatible /v1/chat/completions included) and execute queued runs."""
    from agent_runtime.cli.worker import settings_with_concurrency
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
                        raise error_from(event.data)
                click.echo()
            else:
                result = await runtime.executor.execute_with_retry(context)
                if not as_json:
                    click.echo(result.output)
            assert result is not None
            if result.status == "interrupted":
                from agent_runtime.cli.workflows import echo_interrupt

                echo_interrupt(result)
            if as_json:
                click.echo(json.dumps(run_json(result)))
            else:
                click.echo(usage_line(result), err=True)
        finally:
            await runtime.aclose()

    run_sync(go())


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
