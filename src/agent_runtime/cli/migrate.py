"""``agent-runtime migrate``: apply the PostgreSQL schema migrations of every configured database.

Workers apply them at start too (``postgres.migrate_on_start``); this is for deployments that turn
that off and migrate once, before rolling out. Safe to run while workers start: an advisory lock
serialises it with them.
"""

from __future__ import annotations

import json

import click

from agent_runtime.cli.group import main, run_sync
from agent_runtime.settings import load_settings


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print {url: [versions applied]} as JSON.")
def migrate(as_json: bool) -> None:
    """Bring every PostgreSQL database the configuration names up to this release's schema."""
    from agent_runtime._pg_schema import LATEST
    from agent_runtime._postgres import migrate_url
    from agent_runtime.backends import engines_in_use

    settings = load_settings()
    urls = engines_in_use(settings, "postgresql")
    applied = {url: run_sync(migrate_url(url, connect_timeout=settings.postgres.connect_timeout)) for url in urls}
    if as_json:
        click.echo(json.dumps({"schema_version": LATEST, "applied": applied}))
        return
    if not urls:
        click.echo("no PostgreSQL backend configured (AGENT_RUNTIME_STATE_URL / STATE_URLS): nothing to migrate")
    for url, versions in applied.items():
        done = ", ".join(map(str, versions)) if versions else "nothing (already current)"
        click.echo(f"{_redact(url)}: applied {done}; schema version {LATEST}")


def _redact(url: str) -> str:
    """The URL without its password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url
