"""Admin commands of the CLI: ``keys create|list|revoke`` and ``usage``.

They talk to the configured state backend directly (``AGENT_RUNTIME_STATE_BACKEND``), so they work
with or without a running server.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import click

from agent_runtime.cli.group import main, parse_when, run_sync
from agent_runtime.settings import load_settings


@main.group()
def keys() -> None:
    """Manage API keys (stored hashed; the plaintext is shown once, at creation)."""


@keys.command("create")
@click.option("--tenant", required=True)
@click.option("--user", required=True)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help=(
        "Repeatable: agents:run:<template>, agents:run:*, sessions, usage, models:override, metrics:read, "
        "dashboard:fleet, admin. Unknown scopes are refused. Without any, the key holds sessions and usage."
    ),
)
@click.option("--rpm", type=click.IntRange(min=0), default=None, help="Requests per minute for this key.")
@click.option("--tpm", type=click.IntRange(min=0), default=None, help="Tokens per minute for this key.")
@click.option("--daily-tokens", type=click.IntRange(min=0), default=None)
@click.option("--monthly-usd", type=click.FloatRange(min=0), default=None)
@click.option("--expires", default=None, help="ISO date/time or a duration such as 30d, 12h.")
@click.option("--json", "as_json", is_flag=True)
def keys_create(
    tenant: str,
    user: str,
    scopes: tuple[str, ...],
    rpm: int | None,
    tpm: int | None,
    daily_tokens: int | None,
    monthly_usd: float | None,
    expires: str | None,
    as_json: bool,
) -> None:
    """Create a key; the key is printed alone on the last line (or as "key" with --json)."""
    expires_at = parse_when(expires)

    async def go() -> tuple[str, Any]:
        stores = _stores()
        try:
            return await stores.keys.create_key(  # type: ignore[no-any-return]
                tenant,
                user,
                scopes,
                rpm=rpm,
                tpm=tpm,
                daily_tokens=daily_tokens,
                monthly_usd=monthly_usd,
                expires_at=expires_at.timestamp() if expires_at else None,
            )
        finally:
            await stores.aclose()

    plaintext, record = run_sync(go())
    if as_json:
        click.echo(json.dumps({"key": plaintext, **record.public_dict()}, default=str))
    else:
        click.echo(f"created key {record.key_id} for {tenant}/{user} scopes={','.join(sorted(record.scopes))}")
        click.echo(plaintext)


@keys.command("list")
@click.option("--tenant", default=None)
@click.option("--json", "as_json", is_flag=True)
def keys_list(tenant: str | None, as_json: bool) -> None:
    """List keys (never their secrets)."""

    async def go() -> list[Any]:
        stores = _stores()
        try:
            return await stores.keys.list_keys(tenant)  # type: ignore[no-any-return]
        finally:
            await stores.aclose()

    records = run_sync(go())
    if as_json:
        click.echo(json.dumps([r.public_dict() for r in records], default=str))
        return
    for r in records:
        state = "revoked" if r.revoked else ("expired" if r.is_expired() else "active")
        click.echo(f"{r.key_id}  {r.tenant}/{r.user}  {state:<8} scopes={','.join(sorted(r.scopes))}")


@keys.command("revoke")
@click.argument("key_id")
@click.option("--tenant", default=None)
def keys_revoke(key_id: str, tenant: str | None) -> None:
    """Revoke a key for good."""

    async def go() -> Any:
        stores = _stores()
        try:
            return await stores.keys.revoke_key(key_id, tenant=tenant)
        finally:
            await stores.aclose()

    record = run_sync(go())
    click.echo(f"revoked {record.key_id}")


@keys.command("update")
@click.argument("key_id")
@click.option("--tenant", default=None)
@click.option("--scope", "scopes", multiple=True, help="Repeatable: replaces the key's scopes.")
@click.option("--rpm", type=click.IntRange(min=0), default=None)
@click.option("--tpm", type=click.IntRange(min=0), default=None)
@click.option("--daily-tokens", type=click.IntRange(min=0), default=None)
@click.option("--monthly-usd", type=click.FloatRange(min=0), default=None)
@click.option("--expires", default=None, help="ISO date/time or a duration such as 30d, 12h.")
@click.option("--lift", multiple=True, type=click.Choice(["rpm", "tpm", "daily_tokens", "monthly_usd", "expires_at"]))
def keys_update(key_id: str, tenant: str | None, lift: tuple[str, ...], expires: str | None, **given: Any) -> None:
    """Change a key's scopes, limits or expiry (what is not given stays; --lift removes a limit)."""
    from agent_runtime.security.record import KeyChanges

    fields: dict[str, Any] = {name: value for name, value in given.items() if value not in (None, ())}
    when = parse_when(expires)
    if when is not None:
        fields["expires_at"] = when.timestamp()
    fields.update(dict.fromkeys(lift))
    if "scopes" in fields:
        fields["scopes"] = list(fields["scopes"])

    async def go() -> Any:
        stores = _stores()
        try:
            return await stores.keys.update_key(key_id, KeyChanges(**fields), tenant=tenant)
        finally:
            await stores.aclose()

    record = run_sync(go())
    click.echo(json.dumps(record.public_dict(), default=str))


@main.command()
@click.option("--tenant", default=None)
@click.option("--user", default=None)
@click.option("--since", default=None, help="First day (YYYY-MM-DD).")
@click.option("--until", default=None, help="Last day (YYYY-MM-DD).")
@click.option("--by", "group_by", type=click.Choice(["model", "template", "user", "day", "tenant"]), default="model")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
def usage(tenant: str | None, user: str | None, since: str | None, until: str | None, group_by: str, fmt: str) -> None:
    """Tokens and cost, grouped by model, template, user, day or tenant."""
    from agent_runtime.monitoring.cost_tracker import build_cost_tracker
    from agent_runtime.monitoring.report import format_rows

    first, last = _day(since), _day(until)

    async def go() -> list[Any]:
        tracker = build_cost_tracker(load_settings())
        try:
            return await tracker.report(tenant=tenant, user=user, since=first, until=last, by=group_by)  # type: ignore[arg-type]
        finally:
            await tracker.aclose()

    click.echo(format_rows(run_sync(go()), group_by, fmt))  # type: ignore[arg-type]


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _stores() -> Any:
    from agent_runtime.orchestration.middleware.defaults import open_security_stores

    return open_security_stores(load_settings())
