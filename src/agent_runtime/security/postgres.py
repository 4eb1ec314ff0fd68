"""PostgreSQL key store: API key records shared by every worker of a fleet."""

from __future__ import annotations

from agent_runtime._postgres import PgClient
from agent_runtime.security.base import KeyStore
from agent_runtime.security.record import ApiKey
from agent_runtime.settings import PostgresSettings

__all__ = ["PostgresKeyStore"]

_PUT = (
    "INSERT INTO ar_api_keys (key_id, tenant, record) VALUES (%s, %s, %s::jsonb) "
    "ON CONFLICT (key_id) DO UPDATE SET tenant = excluded.tenant, record = excluded.record"
)


class PostgresKeyStore(KeyStore):
    """Records in table ``ar_api_keys`` (key id, tenant, JSON record with the hash only)."""

    def __init__(self, url: str, settings: PostgresSettings | None = None) -> None:
        self._db = PgClient(url, settings, name="keys")

    async def put(self, key: ApiKey) -> None:
        await self._db.execute("keys.put", _PUT, (key.key_id, key.tenant, self.encode(key)))

    async def get(self, key_id: str) -> ApiKey | None:
        rows = await self._db.fetch("keys.get", "SELECT record::text FROM ar_api_keys WHERE key_id = %s", (key_id,))
        return self.decode(rows[0][0]) if rows else None

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        if tenant is None:
            rows = await self._db.fetch("keys.list", "SELECT record::text FROM ar_api_keys ORDER BY key_id")
        else:
            sql = "SELECT record::text FROM ar_api_keys WHERE tenant = %s ORDER BY key_id"
            rows = await self._db.fetch("keys.list", sql, (tenant,))
        return [self.decode(row[0]) for row in rows]

    async def ping(self) -> None:
        await self._db.ping("keys.ping")

    async def aclose(self) -> None:
        await self._db.aclose()
