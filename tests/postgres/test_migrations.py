"""Schema migrations: from an empty database, from the previous version, several workers at once,
never destructive, and refused (not applied) when a deployment migrates separately."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest

from agent_runtime._pg_schema import LATEST, MIGRATIONS, ensure_schema, schema_version
from agent_runtime._postgres import migrate_url
from agent_runtime.backends import build
from agent_runtime.errors import ConfigurationError
from agent_runtime.monitoring.usage import UsageRecord
from agent_runtime.settings import PostgresSettings, Settings
from tests.conftest import PostgresDatabase

pytestmark = pytest.mark.postgres


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


async def test_from_an_empty_database(fresh_database: PostgresDatabase) -> None:
    assert await migrate_url(fresh_database.url) == [m.version for m in MIGRATIONS]
    assert {"ar_sessions", "ar_api_keys", "ar_quota_spent", "ar_usage", "ar_run_records"} <= tables(fresh_database.url)
    assert await migrate_url(fresh_database.url) == []  # idempotent
    async with await psycopg.AsyncConnection.connect(fresh_database.url) as conn:
        assert await schema_version(conn) == LATEST


async def test_from_the_previous_version_keeps_the_data(fresh_database: PostgresDatabase) -> None:
    url = fresh_database.url
    newest = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", MIGRATIONS[-1].sql))
    assert await migrate_url(url, target=LATEST - 1) == list(range(1, LATEST))
    assert newest and not newest & tables(url)
    with psycopg.connect(url, autocommit=True) as conn:  # what a worker of the previous release wrote
        conn.execute(
            "INSERT INTO ar_usage (op_id, tenant, user_id, template, model, day, input_tokens, runs)"
            " VALUES ('run_1:1:usage:0', 'acme', 'ada', 'writer', 'offline', %s, 7, 1)",
            (date(2026, 12, 1),),
        )
    usage = build("usage", Settings(state_url=url))  # the new release starts: migrates on first use
    try:
        [cell] = await usage.records(tenant="acme")
        assert (cell.input_tokens, cell.runs) == (7, 1)
        await usage.add(UsageRecord("acme", "ada", "writer", "offline", date(2026, 12, 1), input_tokens=3))
        assert (await usage.records(tenant="acme"))[0].input_tokens == 10
    finally:
        await usage.aclose()
    assert newest <= tables(url)
    runs = build("run_records", Settings(state_url=url))
    try:
        assert await runs.get("nothing") is None
    finally:
        await runs.aclose()


async def test_workers_starting_at_once_apply_each_migration_once(fresh_database: PostgresDatabase) -> None:
    async def start() -> list[int]:
        async with await psycopg.AsyncConnection.connect(fresh_database.url, autocommit=True) as conn:
            return await ensure_schema(conn)

    results = await asyncio.gather(*(start() for _ in range(8)))
    assert sorted(v for applied in results for v in applied) == [m.version for m in MIGRATIONS]
    with psycopg.connect(fresh_database.url) as conn:
        rows = conn.execute("SELECT version FROM ar_schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]


def test_no_migration_is_destructive() -> None:
    destructive = re.compile(r"\b(DROP|TRUNCATE|DELETE|RENAME|ALTER\s+COLUMN)\b", re.IGNORECASE)
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1))  # numbered, none skipped
    assert [m.version for m in MIGRATIONS if destructive.search(m.sql)] == []


async def test_without_migrate_on_start_a_store_refuses_until_migrated(fresh_database: PostgresDatabase) -> None:
    settings = Settings(state_url=fresh_database.url, postgres=PostgresSettings(migrate_on_start=False))
    keys = build("keys", settings)
    try:
        with pytest.raises(ConfigurationError, match="agent-runtime migrate"):
            await keys.list()
        assert "ar_api_keys" not in tables(fresh_database.url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_RUNTIME_")}
        env["AGENT_RUNTIME_STATE_URL"] = fresh_database.url
        cli = Path(sys.executable).parent / "agent-runtime"
        out = subprocess.run([str(cli), "migrate", "--json"], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {
            "schema_version": LATEST,
            "applied": {fresh_database.url: [m.version for m in MIGRATIONS]},
        }
        assert await keys.list() == []
    finally:
        await keys.aclose()
