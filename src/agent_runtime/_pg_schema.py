"""The runtime's PostgreSQL schema as numbered migrations, applied under an advisory lock.

``ensure_schema`` runs in one transaction holding ``pg_advisory_xact_lock``: of several workers
starting at once, one applies what is missing and the others wait, then find nothing to do. Applied
versions are rows of ``ar_schema_migrations``. Migrations only add (tables, columns, indexes): none
drops or rewrites data, so a worker of the previous release keeps working on the new schema, and
the test suite checks that no migration holds a destructive statement. A new migration is appended,
never edited. LangGraph's checkpoint tables are LangGraph's (its ``setup()``, run under the same lock
by the session store).

The usage ledger (``ar_usage``) is meant to be read with plain SQL: one row per model per run
attempt, keyed by the accounting journal's op id (``<run_id>:<attempt>:usage:<index>``), with the
run id and attempt in their own columns, e.g.::

    SELECT tenant, date_trunc('month', day) AS month, sum(cost_usd)
    FROM ar_usage GROUP BY 1, 2 ORDER BY 1, 2;
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent_runtime.errors import ConfigurationError

__all__ = ["LATEST", "LOCK_KEY", "MIGRATIONS", "Migration", "ensure_schema", "schema_version"]

LOCK_KEY = 0x61725F736368  # "ar_sch": the advisory lock of schema changes


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sessions, api keys, quotas, usage ledger",
        """
CREATE TABLE IF NOT EXISTS ar_sessions (
    key TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    data BYTEA NOT NULL,
    checkpoint BYTEA
);
CREATE INDEX IF NOT EXISTS ar_sessions_owner ON ar_sessions (tenant, user_id, expires_at);
CREATE INDEX IF NOT EXISTS ar_sessions_expiry ON ar_sessions (expires_at);
CREATE TABLE IF NOT EXISTS ar_session_locks (
    key TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS ar_api_keys (
    key_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    record JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS ar_api_keys_tenant ON ar_api_keys (tenant);
CREATE TABLE IF NOT EXISTS ar_quota_spent (
    bucket TEXT PRIMARY KEY,
    spent BIGINT NOT NULL DEFAULT 0,
    window_end DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS ar_quota_reservations (
    bucket TEXT NOT NULL,
    rid TEXT NOT NULL,
    amount BIGINT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (bucket, rid)
);
CREATE INDEX IF NOT EXISTS ar_quota_reservations_expiry ON ar_quota_reservations (expires_at);
CREATE TABLE IF NOT EXISTS ar_quota_applied (
    op_id TEXT PRIMARY KEY,
    applied_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS ar_usage (
    op_id TEXT PRIMARY KEY,
    run_id TEXT,
    attempt INTEGER,
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    template TEXT NOT NULL,
    model TEXT NOT NULL,
    day DATE NOT NULL,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    runs INTEGER NOT NULL DEFAULT 0,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ar_usage_tenant_day ON ar_usage (tenant, day);
""",
    ),
    Migration(
        2,
        "run records and the run registry",
        """
CREATE TABLE IF NOT EXISTS ar_run_records (
    run_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL,
    session_id TEXT,
    template TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION,
    record JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS ar_run_records_tenant ON ar_run_records (tenant, created_at);
CREATE INDEX IF NOT EXISTS ar_run_records_status ON ar_run_records (status, created_at);
CREATE TABLE IF NOT EXISTS ar_run_registry (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL,
    record JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS ar_run_registry_stale ON ar_run_registry (status, heartbeat_at);
""",
    ),
    Migration(
        3,
        "run event logs",
        """
CREATE TABLE IF NOT EXISTS ar_run_event_logs (
    run_id TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    closed BOOLEAN NOT NULL DEFAULT false,
    touched_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS ar_run_event_logs_touched ON ar_run_event_logs (touched_at);
CREATE TABLE IF NOT EXISTS ar_run_events (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
""",
    ),
    Migration(
        4,
        "cron schedules and their claimed ticks",
        """
CREATE TABLE IF NOT EXISTS ar_cron_schedules (
    cron_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    next_run_at DOUBLE PRECISION,
    record JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS ar_cron_schedules_tenant ON ar_cron_schedules (tenant);
CREATE INDEX IF NOT EXISTS ar_cron_schedules_due ON ar_cron_schedules (next_run_at) WHERE enabled;
CREATE TABLE IF NOT EXISTS ar_cron_ticks (
    cron_id TEXT NOT NULL,
    tick_at DOUBLE PRECISION NOT NULL,
    claimed_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (cron_id, tick_at)
);
CREATE INDEX IF NOT EXISTS ar_cron_ticks_age ON ar_cron_ticks (claimed_at);
""",
    ),
)
LATEST = MIGRATIONS[-1].version

_TABLE = """
CREATE TABLE IF NOT EXISTS ar_schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


async def _scalar(conn: Any, sql: str) -> Any:
    """The one value of a query, whatever row factory the connection has."""
    from psycopg.rows import tuple_row

    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(sql)
    row = await cur.fetchone()
    return row[0]


async def schema_version(conn: Any) -> int:
    """The highest applied version (0 on an empty database)."""
    if not await _scalar(conn, "SELECT to_regclass('ar_schema_migrations') IS NOT NULL"):
        return 0
    return int(await _scalar(conn, "SELECT coalesce(max(version), 0) FROM ar_schema_migrations"))


async def ensure_schema(conn: Any, *, migrate: bool = True, target: int = LATEST) -> list[int]:
    """Apply the migrations up to ``target`` that are missing (``migrate``), or check there are none.

    Returns the versions applied now. Raises ``ConfigurationError`` when ``migrate`` is off and the
    schema is behind, or when the database is newer than this release knows.
    """
    if not migrate:
        current = await schema_version(conn)
        if current < target:
            raise ConfigurationError(
                f"the PostgreSQL schema is at version {current}, this release needs {target}: "
                "run `agent-runtime migrate` (or set postgres.migrate_on_start)"
            )
        return []
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        await conn.execute(_TABLE)
        current = int(await _scalar(conn, "SELECT coalesce(max(version), 0) FROM ar_schema_migrations"))
        if current > LATEST:
            raise ConfigurationError(
                f"the PostgreSQL schema is at version {current}, newer than this release ({LATEST})"
            )
        for migration in MIGRATIONS:
            if current < migration.version <= target:
                await conn.execute(migration.sql, prepare=False)  # several statements: never prepared
                await conn.execute(
                    "INSERT INTO ar_schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                applied.append(migration.version)
    return applied
