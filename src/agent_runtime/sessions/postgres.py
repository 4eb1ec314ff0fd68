"""PostgreSQL session store: sessions shared by a fleet, conversation state in LangGraph's Postgres saver.

Sessions and their run leases live in ``ar_sessions`` / ``ar_session_locks`` (schema: ``_pg_schema``).
Creation runs in one transaction that locks the owner's existing rows, so two workers cannot both
pass the per-user limit; a lease is an upsert that only takes an expired lease over. LangGraph's
checkpoints go to ``BoundedPostgresSaver`` on a pool of its own.
"""

from __future__ import annotations

import time
from typing import Any

from agent_runtime._postgres import PgClient
from agent_runtime.errors import ConflictError, QuotaExceededError
from agent_runtime.sessions.base import SessionStore
from agent_runtime.sessions.models import Session, decode_session, encode_session, try_decode_session
from agent_runtime.sessions.retention import DEFAULT_CHECKPOINT_HISTORY
from agent_runtime.settings import PostgresSettings

__all__ = ["PostgresSessionStore"]

_INSERT = (
    "INSERT INTO ar_sessions (key, tenant, user_id, expires_at, created_at, data) VALUES (%s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (key) DO UPDATE SET tenant = excluded.tenant, user_id = excluded.user_id, expires_at = "
    "excluded.expires_at, created_at = excluded.created_at, data = excluded.data, checkpoint = NULL "
    "WHERE ar_sessions.expires_at <= %s"
)
_LEASE = (
    "INSERT INTO ar_session_locks (key, token, expires_at) VALUES (%s, %s, %s) "
    "ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at "
    "WHERE ar_session_locks.expires_at <= %s"
)


class PostgresSessionStore(SessionStore):
    """Sessions in ``ar_sessions``; LangGraph checkpoints in LangGraph's tables of the same database."""

    name = "postgres"

    def __init__(self, url: str, settings: PostgresSettings | None = None) -> None:
        self.url = url
        self.settings = settings or PostgresSettings()
        self._db = PgClient(url, self.settings, name="sessions")

    async def create(self, session: Session, *, max_per_user: int | None) -> None:
        now = time.time()
        async with self._db.transaction("sessions.create") as conn:
            # the owner's advisory lock: concurrent creations by one user queue here, so the count holds
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{session.tenant}/{session.user_id}",))
            args = (session.key, session.tenant, session.user_id, session.expires_ts, session.created_at.timestamp())
            cur = await conn.execute(_INSERT, (*args, encode_session(session), now))
            if cur.rowcount == 0:
                raise ConflictError(f"session id {session.id} is already in use")
            if max_per_user is not None:  # counted with the new one; raising rolls the insert back
                cur = await conn.execute(
                    "SELECT count(*) FROM ar_sessions WHERE tenant = %s AND user_id = %s AND expires_at > %s",
                    (session.tenant, session.user_id, now),
                )
                if (await cur.fetchone())[0] > max_per_user:
                    raise QuotaExceededError(f"user already has the maximum of {max_per_user} sessions")

    async def get(self, key: str) -> Session | None:
        rows = await self._db.fetch("sessions.get", "SELECT data FROM ar_sessions WHERE key = %s", (key,))
        return decode_session(key, bytes(rows[0][0])) if rows else None

    async def get_with_checkpoint(self, key: str) -> tuple[Session | None, bytes | None]:
        sql = "SELECT data, checkpoint FROM ar_sessions WHERE key = %s"
        rows = await self._db.fetch("sessions.resume", sql, (key,))
        if not rows:
            return None, None
        data, checkpoint = rows[0]
        return decode_session(key, bytes(data)), None if checkpoint is None else bytes(checkpoint)

    async def update(self, session: Session) -> bool:
        sql = "UPDATE ar_sessions SET data = %s, expires_at = %s WHERE key = %s"
        args = (encode_session(session), session.expires_ts, session.key)
        return await self._db.execute("sessions.update", sql, args) > 0

    async def put_checkpoint(self, key: str, data: bytes) -> bool:
        sql = "UPDATE ar_sessions SET checkpoint = %s WHERE key = %s AND expires_at > %s"
        return await self._db.execute("sessions.save_checkpoint", sql, (data, key, time.time())) > 0

    async def delete(self, session: Session) -> bool:
        async with self._db.transaction("sessions.delete") as conn:
            cur = await conn.execute("DELETE FROM ar_sessions WHERE key = %s", (session.key,))
            found = bool(cur.rowcount > 0)
            await conn.execute("DELETE FROM ar_session_locks WHERE key = %s", (session.key,))
        return found

    async def list_for_user(self, tenant: str, user_id: str, now: float) -> list[Session]:
        sql = (
            "SELECT key, data FROM ar_sessions WHERE tenant = %s AND user_id = %s AND expires_at > %s "
            "ORDER BY created_at DESC"
        )
        rows = await self._db.fetch("sessions.list", sql, (tenant, user_id, now))
        return [s for key, data in rows if (s := try_decode_session(key, bytes(data))) is not None]

    async def pop_expired(self, now: float) -> list[str]:
        async with self._db.transaction("sessions.cleanup_expired") as conn:
            cur = await conn.execute("DELETE FROM ar_sessions WHERE expires_at <= %s RETURNING key", (now,))
            keys = [row[0] for row in await cur.fetchall()]
            await conn.execute("DELETE FROM ar_session_locks WHERE expires_at <= %s", (now,))
        return keys

    async def acquire_lease(self, key: str, token: str, lease_s: float) -> bool:
        now = time.time()
        return await self._db.execute("sessions.lock", _LEASE, (key, token, now + lease_s, now)) > 0

    async def renew_lease(self, key: str, token: str, lease_s: float) -> bool:
        sql = "UPDATE ar_session_locks SET expires_at = %s WHERE key = %s AND token = %s"
        return await self._db.execute("sessions.lock_renew", sql, (time.time() + lease_s, key, token)) > 0

    async def release_lease(self, key: str, token: str) -> None:
        await self._db.execute(
            "sessions.unlock", "DELETE FROM ar_session_locks WHERE key = %s AND token = %s", (key, token)
        )

    def make_checkpointer(self, history: int | None = DEFAULT_CHECKPOINT_HISTORY) -> Any:
        from psycopg.rows import dict_row

        from agent_runtime.sessions.checkpoint_postgres import BoundedPostgresSaver

        # LangGraph's saver wants autocommit, dict rows and no prepared statements; the advisory lock
        # of its setup holds one connection while the migrations use another
        client = PgClient(
            self.url, self.settings, name="checkpoints", row_factory=dict_row, prepare_threshold=0, min_connections=2
        )
        return BoundedPostgresSaver(client, history=history)

    async def open_checkpointer(self, saver: Any) -> None:
        await saver.setup()

    async def close_checkpointer(self, saver: Any) -> None:
        await saver.client.aclose()

    async def ping(self) -> None:
        await self._db.ping("sessions.ping")

    async def aclose(self) -> None:
        await self._db.aclose()
