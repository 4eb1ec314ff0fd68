"""SQLite key store: the embedded default; survives restarts and is shared by processes on one host."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agent_runtime._sqlite import connect_sqlite, sqlite_errors, sqlite_fetch, sqlite_ping
from agent_runtime.security.base import KeyStore
from agent_runtime.security.record import ApiKey

__all__ = ["SQLiteKeyStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant);
"""


class SQLiteKeyStore(KeyStore):
    """Records in table ``api_keys`` (key id, tenant, JSON record with the hash only)."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def _db(self) -> Any:
        if self._conn is None:
            async with self._lock:
                if self._conn is None:
                    self._conn = await connect_sqlite(self.path, _SCHEMA)
        return self._conn

    async def put(self, key: ApiKey) -> None:
        db = await self._db()
        async with sqlite_errors("keys.put"):
            await db.execute(
                "INSERT INTO api_keys (key_id, tenant, record) VALUES (?, ?, ?) "
                "ON CONFLICT (key_id) DO UPDATE SET tenant = excluded.tenant, record = excluded.record",
                (key.key_id, key.tenant, self.encode(key)),
            )

    async def get(self, key_id: str) -> ApiKey | None:
        db = await self._db()
        sql = "SELECT record FROM api_keys WHERE key_id = ?"
        rows = await sqlite_fetch(db, "keys.get", sql, (key_id,))
        return self.decode(rows[0][0]) if rows else None

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        db = await self._db()
        args: tuple[str, ...]
        query, args = "SELECT record FROM api_keys", ()
        if tenant is not None:
            query, args = query + " WHERE tenant = ?", (tenant,)
        rows = await sqlite_fetch(db, "keys.list", query, args)
        return [self.decode(row[0]) for row in rows]

    async def ping(self) -> None:
        await sqlite_ping(await self._db(), "keys.ping")

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
