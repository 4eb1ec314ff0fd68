"""``agent-runtime crons create|list|get|delete``: the schedules of a running server, over its HTTP API.

Like ``runs``: the server is ``--url`` (``AGENT_RUNTIME_URL``) and the caller the API key ``--api-key``
(``AGENT_RUNTIME_API_KEY``); the schedules created are that key's, and so are the runs they start.
Each command prints the JSON answer (``delete`` prints ``{"deleted": ID}``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
import httpx

from agent_runtime.cli.group import main
from agent_runtime.errors import AgentRuntimeError, ServiceUnavailableError, ValidationError
from agent_runtime.server.errors import status_for_code

__all__ = ["crons"]


@main.group()
@click.option("--url", envvar="AGENT_RUNTIME_URL", default="http://127.0.0.1:8000", show_default=True)
@click.option("--api-key", envvar="AGENT_RUNTIME_API_KEY", required=True, help="An API key of the caller.")
@click.pass_context
def crons(ctx: click.Context, url: str, api_key: str) -> None:
    """Schedules of a server: create, list, get, delete."""
    ctx.obj = {"url": url.rstrip("/"), "key": api_key}


def _raise_for(answer: httpx.Response) -> None:
    try:
        detail = answer.json().get("error", {})
    except (ValueError, AttributeError):
        detail = {}
    error = AgentRuntimeError(str(detail.get("message", f"HTTP {answer.status_code}")))
    error.code = str(detail.get("code", "http_error"))
    error.status_code = status_for_code(error.code)
    raise error


def _call(ctx: click.Context, method: str, path: str, **request: Any) -> Any:
    """The JSON answer of one API call (``None`` for 204); an error answer raises its typed error."""
    headers = {"Authorization": f"Bearer {ctx.obj['key']}"}
    try:
        answer = httpx.request(method, ctx.obj["url"] + path, headers=headers, timeout=30, **request)
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(f"cannot reach {ctx.obj['url']}: {exc}") from exc
    if answer.status_code >= 400:
        _raise_for(answer)
    return None if answer.status_code == 204 else answer.json()


def _echo(body: Any) -> None:
    click.echo(json.dumps(body, indent=2, sort_keys=True))


def _metadata(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValidationError("--metadata must be a JSON object", details={"param": "metadata"}) from exc
    if not isinstance(value, dict):
        raise ValidationError("--metadata must be a JSON object", details={"param": "metadata"})
    return value


@crons.command("create")
@click.argument("template")
@click.argument("input_text", metavar="INPUT")
@click.option("--schedule", required=True, help="Five cron fields, e.g. '0 9 * * 1-5'.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the schedule.")
@click.option("--session", "session_id", default=None, help="Every run continues this session.")
@click.option("--end-time", type=click.DateTime(), default=None, help="No tick after this time (UTC unless zoned).")
@click.option("--disabled", is_flag=True, help="Store it without firing (enable it later with PATCH).")
@click.option("--metadata", default=None, help="A JSON object kept with the schedule and its runs.")
@click.pass_context
def create_cron(
    ctx: click.Context,
    template: str,
    input_text: str,
    schedule: str,
    timezone: str,
    session_id: str | None,
    end_time: datetime | None,
    disabled: bool,
    metadata: str | None,
) -> None:
    """Run TEMPLATE on INPUT at every tick of --schedule."""
    body: dict[str, Any] = {"template": template, "input": input_text, "schedule": schedule, "timezone": timezone}
    body |= {"session_id": session_id, "enabled": not disabled, "metadata": _metadata(metadata)}
    if end_time is not None:
        body["end_time"] = end_time.isoformat()
    _echo(_call(ctx, "POST", "/v1/crons", json={k: v for k, v in body.items() if v is not None}))


@crons.command("list")
@click.option("--template", default=None)
@click.option("--session", "session_id", default=None)
@click.option("--enabled/--disabled", default=None, help="Only enabled (or only disabled) schedules.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0))
@click.pass_context
def list_crons(
    ctx: click.Context, template: str | None, session_id: str | None, enabled: bool | None, limit: int, offset: int
) -> None:
    """The caller's schedules, newest first."""
    params = {"template": template, "session_id": session_id, "limit": limit, "offset": offset}
    if enabled is not None:
        params["enabled"] = str(enabled).lower()
    _echo(_call(ctx, "GET", "/v1/crons", params={k: v for k, v in params.items() if v is not None}))


@crons.command("get")
@click.argument("cron_id")
@click.pass_context
def get_cron(ctx: click.Context, cron_id: str) -> None:
    """One schedule."""
    _echo(_call(ctx, "GET", f"/v1/crons/{cron_id}"))


@crons.command("delete")
@click.argument("cron_id")
@click.pass_context
def delete_cron(ctx: click.Context, cron_id: str) -> None:
    """Delete a schedule (runs it already started go on)."""
    _call(ctx, "DELETE", f"/v1/crons/{cron_id}")
    _echo({"deleted": cron_id})
