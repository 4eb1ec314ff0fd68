"""SQLite session store: the embedded default; survives restarts and is shared by local processes.

Sessions live in ``path`` (WAL, busy timeout via ``connect_sqlite``). Multi-statement changes run
in ``BEGIN IMMEDIATE`` transactions so two processes cannot both pass the per-user limit, and the
run lock is a lease row with an expiry, so a process that died holding it stops blocking the
session. Conversation state goes to LangGraph's ``AsyncSqliteSaver`` in its own file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent_runtime._sqlite import connect_sqlite, sqlite_errors, sqlite_fetch, sqlite_transaction
from agent_runtime.errors import ConflictError, QuotaExceededError
from agent_runtime.sessions.base import SessionStore
from agent_runtime.sessions.models import Session, decode_session, encode_session, try_decode_session
from agent_runtime.sessions.retention import DEFAULT_CHECKPOINT_HISTORY

__all__ = ["SqliteSessionStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ar_sessions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    created_at REAL NOT NULL,
    data BLOB NOT NULL,
    checkpoint BLOB
);
CREATE INDEX IF NOT EXISTS ar_sessions_owner ON ar_sessions (tenant, user_id, expires_at);
CREATE INDEX IF NOT EXISTS ar_sessions_expiry ON ar_sessions (expires_at);
CREATE TABLE IF NOT EXISTS ar_session_locks (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


class SqliteSessionStore(SessionStore):
    """Sessions in a SQLite file; LangGraph checkpoints in ``checkpoint_path`` (a sibling file by default)."""

    name = "sqlite"

    def __init__(self, path: Path | str, *, checkpoint_path: Path | str | None = None) -> None:
        self.path = Path(path)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else self.path.with_name("checkpoints.sqlite3")
        self._conn: Any = None
        self._open_lock: asyncio.Lock | None = None
        self._write_lock: asyncio.Lock | None = None

    async def _db(self) -> Any:
        if self._conn is not None:
            return self._conn
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
            self._write_lock = asyncio.Lock()
        async with self._open_lock:
            if self._conn is None:
                self._conn = await connect_sqlite(self.path, _SCHEMA)
        return self._conn

    @asynccontextmanager
    async def _tx(self, operation: str) -> AsyncIterator[Any]:
        """One write transaction at a time per process; BEGIN IMMEDIATE excludes other processes."""
        db = await self._db()
        assert self._write_lock is not None
        async with self._write_lock, sqlite_transaction(db, operation):
            yield db

    async def _one(self, operation: str, sql: str, args: tuple[Any, ...]) -> Any:
        rows = await sqlite_fetch(await self._db(), operation, sql, args)
        return rows[0] if rows else None

    async def create(self, session: Session, *, max_per_user: int | None) -> None:
        now = time.time()
        async with self._tx("sessions.create") as db:
            async with db.execute("SELECT expires_at FROM ar_sessions WHERE id = ?", (session.key,)) as cur:
                row = await cur.fetchone()
            if row is not None:
                if row[0] > now:
                    raise ConflictError(f"session id {session.id} is already in use")
                await db.execute("DELETE FROM ar_sessions WHERE id = ?", (session.key,))
            if max_per_user is not None:
                sql = "SELECT COUNT(*) FROM ar_sessions WHERE tenant = ? AND user_id = ? AND expires_at > ?"
                async with db.execute(sql, (session.tenant, session.user_id, now)) as cur:
                    count = (await cur.fetchone())[0]
                if count >= max_per_user:
                    raise QuotaExceededError(f"user already has the maximum of {max_per_user} sessions")
            await db.execute(
                "INSERT INTO ar_sessions (id, tenant, user_id, expires_at, created_at, data) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session.key,
                    session.tenant,
                    session.user_id,
                    session.expires_ts,
                    session.created_at.timestamp(),
                    encode_session(session),
                ),
            )

    async def get(self, key: str) -> Session | None:
        row = await self._one("sessions.get", "SELECT data FROM ar_sessions WHERE id = ?", (key,))
        return None if row is None else decode_session(key, row[0])

    async def get_with_checkpoint(self, key: str) -> tuple[Session | None, bytes | None]:
        sql = "SELECT data, checkpoint FROM ar_sessions WHERE id = ?"
        row = await self._one("sessions.resume", sql, (key,))
        if row is None:
            return None, None
        return decode_session(key, row[0]), row[1]

    async def _write(self, operation: str, sql: str, args: tuple[Any, ...]) -> int:
        db = await self._db()
        assert self._write_lock is not None
        async with self._write_lock, sqlite_errors(operation):  # one autocommit statement
            cur = await db.execute(sql, args)
            count: int = cur.rowcount
            await cur.close()
        return count

    async def update(self, session: Session) -> bool:
        sql = "UPDATE ar_sessions SET data = ?, expires_at = ? WHERE id = ?"
        return await self._write("sessions.update", sql, (encode_session(session), session.expires_ts, session.key)) > 0

    async def put_checkpoint(self, key: str, data: bytes) -> bool:
        sql = "UPDATE ar_sessions SET checkpoint = ? WHERE id = ? AND expires_at > ?"
        return await self._write("sessions.save_checkpoint", sql, (data, key, time.time())) > 0

    async def delete(self, session: Session) -> bool:
        async with self._tx("sessions.delete") as db:
            cur = await db.execute("DELETE FROM ar_sessions WHERE id = ?", (session.key,))
            found: bool = cur.rowcount > 0
            await db.execute("DELETE FROM ar_session_locks WHERE id = ?", (session.key,))
        return found

    async def list_for_user(self, tenant: str, user_id: str, now: float) -> list[Session]:
        sql = (
            "SELECT id, data FROM ar_sessions WHERE tenant = ? AND user_id = ? AND expires_at > ? "
            "ORDER BY created_at DESC"
        )
        rows = await sqlite_fetch(await self._db(), "sessions.list", sql, (tenant, user_id, now))
        return [s for row in rows if (s := try_decode_session(row[0], row[1])) is not None]

    async def pop_expired(self, now: float) -> list[str]:
        async with self._tx("sessions.cleanup_expired") as db:
            async with db.execute("SELECT id FROM ar_sessions WHERE expires_at <= ?", (now,)) as cur:
                ids = [row[0] for row in await cur.fetchall()]
            await db.execute("DELETE FROM ar_sessions WHERE expires_at <= ?", (now,))
            await db.execute("DELETE FROM ar_session_locks WHERE expires_at <= ?", (now,))
        return ids

    async def acquire_lease(self, key: str, token: str, lease_s: float) -> bool:
        now = time.time()
        sql = (
            "INSERT INTO ar_session_locks (id, token, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at "
            "WHERE ar_session_locks.expires_at <= ?"
        )
        return await self._write("sessions.lock", sql, (key, token, now + lease_s, now)) > 0

    async def lease_held(self, key: str) -> bool:
        sql = "SELECT 1 FROM ar_session_locks WHERE id = ? AND expires_at > ?"
        return await self._one("sessions.lock_held", sql, (key, time.time())) is not None

    async def renew_lease(self, key: str, token: str, lease_s: float) -> bool:
        sql = "UPDATE ar_session_locks SET expires_at = ? WHERE id = ? AND token = ?"
        return await self._write("sessions.lock_renew", sql, (time.time() + lease_s, key, token)) > 0

    async def release_lease(self, key: str, token: str) -> None:
        sql = "DELETE FROM ar_session_locks WHERE id = ? AND token = ?"
        await self._write("sessions.unlock", sql, (key, token))

    def make_checkpointer(self, history: int | None = DEFAULT_CHECKPOINT_HISTORY) -> Any:
        from agent_runtime.sessions.checkpoint_sqlite import BoundedSqliteSaver

        return BoundedSqliteSaver(self.checkpoint_path, history=history)  # connects in its setup

    async def open_checkpointer(self, saver: Any) -> None:
        saver.setup()

    async def close_checkpointer(self, saver: Any) -> None:
        saver.close()

    async def ping(self) -> None:
        await self._one("sessions.ping", "SELECT 1", ())

    async def aclose(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
