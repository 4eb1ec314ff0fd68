"""``agent-runtime runs list|get|cancel|wait``: the run records of a running server, over its HTTP API.

The server is ``--url`` (``AGENT_RUNTIME_URL``, default ``http://127.0.0.1:8000``) and the caller is
the API key ``--api-key`` (``AGENT_RUNTIME_API_KEY``): the commands see exactly what the routes show
that key's tenant. Each prints the JSON answer; an error answer is reported as ``error [code]: message``.
"""

from __future__ import annotations

import json
from typing import Any

import click
import httpx

from agent_runtime.cli.group import main
from agent_runtime.errors import AgentRuntimeError, ServiceUnavailableError
from agent_runtime.server.errors import status_for_code

__all__ = ["runs"]


@main.group()
@click.option("--url", envvar="AGENT_RUNTIME_URL", default="http://127.0.0.1:8000", show_default=True)
@click.option("--api-key", envvar="AGENT_RUNTIME_API_KEY", required=True, help="An API key of the caller.")
@click.pass_context
def runs(ctx: click.Context, url: str, api_key: str) -> None:
    """Runs of a server: list, get, cancel, wait."""
    ctx.obj = {"url": url.rstrip("/"), "key": api_key}


def _call(
    ctx: click.Context,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    wait_s: float = 0,
    payload: dict[str, Any] | None = None,
) -> None:
    headers = {"Authorization": f"Bearer {ctx.obj['key']}"}
    query = {k: v for k, v in (params or {}).items() if v is not None}
    url, timeout = ctx.obj["url"] + path, 30 + wait_s
    try:
        answer = httpx.request(method, url, params=query, json=payload, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(f"cannot reach {ctx.obj['url']}: {exc}") from exc
    try:
        body = answer.json()
    except ValueError:
        body = {"error": {"code": "bad_response", "message": answer.text[:200]}}
    if answer.status_code >= 400:
        detail = body.get("error", {}) if isinstance(body, dict) else {}
        error = AgentRuntimeError(str(detail.get("message", f"HTTP {answer.status_code}")))
        error.code = str(detail.get("code", "http_error"))
        error.status_code = status_for_code(error.code)
        raise error
    click.echo(json.dumps(body, indent=2, sort_keys=True))


@runs.command("list")
@click.option("--session", "session_id", default=None)
@click.option("--status", default=None)
@click.option("--template", default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0))
@click.pass_context
def list_runs(
    ctx: click.Context, session_id: str | None, status: str | None, template: str | None, limit: int, offset: int
) -> None:
    """The caller's runs, newest first."""
    params = {"session_id": session_id, "status": status, "template": template, "limit": limit, "offset": offset}
    _call(ctx, "GET", "/v1/runs", params)


@runs.command("get")
@click.argument("run_id")
@click.pass_context
def get_run(ctx: click.Context, run_id: str) -> None:
    """One run's record."""
    _call(ctx, "GET", f"/v1/runs/{run_id}")


@runs.command("cancel")
@click.argument("run_id")
@click.option(
    "--action",
    type=click.Choice(["interrupt", "rollback"]),
    default="interrupt",
    show_default=True,
    help="rollback also drops what the run checkpointed, and its record.",
)
@click.pass_context
def cancel_run(ctx: click.Context, run_id: str, action: str) -> None:
    """Cancel a pending or running run."""
    _call(ctx, "POST", f"/v1/runs/{run_id}/cancel", payload={"action": action})


@runs.command("wait")
@click.argument("run_id")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1, 300))
@click.pass_context
def wait_run(ctx: click.Context, run_id: str, timeout: float) -> None:
    """Block until the run has finished (or TIMEOUT seconds), then print its record."""
    _call(ctx, "GET", f"/v1/runs/{run_id}/wait", {"timeout": timeout}, wait_s=timeout)
