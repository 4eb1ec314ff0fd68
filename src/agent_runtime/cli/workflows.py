"""Workflow and approval commands of the CLI: ``resume RUN_OR_SESSION --approve|--reject|--edit JSON``.

A run that pauses for approval prints its pending tool calls and the id to resume it by; any process
using the same state backend (``AGENT_RUNTIME_STATE_BACKEND`` / ``DATA_DIR``) can answer it later.
"""

from __future__ import annotations

import json
from typing import Any

import click

from agent_runtime.cli.group import main, run_json, run_sync, usage_line
from agent_runtime.settings import load_settings

__all__ = ["echo_interrupt", "resume"]


def echo_interrupt(result: Any) -> None:
    """Print the pending actions of an interrupted run, and how to answer them (stderr)."""
    from agent_runtime.workflows.approval import pending_actions

    class _Interrupt:
        def __init__(self, item: dict[str, Any]) -> None:
            self.id, self.value = item.get("id"), item.get("value")

    actions = pending_actions([_Interrupt(i) for i in result.metadata.get("interrupts", [])])
    click.echo(f"\n[awaiting approval] run {result.run_id}", err=True)
    for action in actions:
        allowed = "/".join(action["allowed_decisions"])
        click.echo(f"  - {action['name']}({json.dumps(action['args'])})  [{allowed}]", err=True)
    resume_id = result.metadata.get("resume_id") or result.session_id
    click.echo(f"resume with: agent-runtime resume {resume_id} --approve | --reject | --edit '{{...}}'", err=True)


def _decisions(approve: bool, reject: bool, edit: str | None, message: str | None) -> Any:
    if sum((approve, reject, edit is not None)) != 1:
        raise click.UsageError("give exactly one of --approve, --reject or --edit JSON")
    if approve:
        return "approve"
    if reject:
        return {"type": "reject", "message": message} if message else "reject"
    try:
        value = json.loads(edit or "")
    except ValueError as exc:
        raise click.BadParameter(f"--edit must be JSON: {exc}") from None
    if isinstance(value, dict):
        return {"type": "edit", "args": value}
    if isinstance(value, list):
        return value  # one decision per pending action, in LangChain's or our short form
    raise click.BadParameter("--edit takes a JSON object (new tool arguments) or a list of decisions")


@main.command()
@click.argument("run_or_session", metavar="RUN_OR_SESSION")
@click.option("--approve", is_flag=True, help="Let every pending tool call run.")
@click.option("--reject", is_flag=True, help="Refuse every pending tool call (the tool does not run).")
@click.option("--edit", default=None, help="JSON: new arguments for the pending tool call (or a list of decisions).")
@click.option("--message", default=None, help="With --reject: the reason given to the model.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, like `run --json`.")
def resume(
    run_or_session: str, approve: bool, reject: bool, edit: str | None, message: str | None, as_json: bool
) -> None:
    """Answer a run that is waiting for approval and let it continue."""
    from agent_runtime.runtime import Runtime
    from agent_runtime.types import Principal

    decisions = _decisions(approve, reject, edit, message)

    async def go() -> None:
        runtime = await Runtime.create(load_settings(), collect_events=True)
        try:
            principal = Principal(tenant="default", user="cli", scopes=frozenset({"admin"}))
            result = await runtime.executor.resume_async(run_or_session, decisions, principal=principal)
            if as_json:
                click.echo(json.dumps(run_json(result)))
            else:
                click.echo(result.output)
                click.echo(usage_line(result), err=True)
            if result.status == "interrupted":
                echo_interrupt(result)
        finally:
            await runtime.aclose()

    run_sync(go())
