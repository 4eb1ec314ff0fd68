"""Redis key store: shared by every worker of a fleet.

Layout (prefix ``ar`` by default): ``ar:key:<key_id>`` holds the JSON record (hash only) and the
set ``ar:keys:<tenant>`` indexes a tenant's key ids, so listing one tenant never scans the keyspace.
"""

from __future__ import annotations

from typing import Any

from agent_runtime._redis import check_key_part, make_redis, redis_errors
from agent_runtime.errors import ValidationError
from agent_runtime.security.base import KeyStore
from agent_runtime.security.record import ApiKey
from agent_runtime.settings import RedisSettings

__all__ = ["RedisKeyStore"]


class RedisKeyStore(KeyStore):
    def __init__(self, url: str, settings: RedisSettings | None = None, *, client: Any = None) -> None:
        cfg = settings or RedisSettings()
        self._redis = client if client is not None else make_redis(url, cfg)
        self._owns_client = client is None
        self._prefix = cfg.key_prefix

    def _key(self, key_id: str) -> str:
        return f"{self._prefix}:key:{check_key_part(key_id, 'key id')}"

    def _tenant_index(self, tenant: str) -> str:
        return f"{self._prefix}:keys:{check_key_part(tenant, 'tenant')}"

    async def put(self, key: ApiKey) -> None:
        async with redis_errors("keys.put"), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(key.key_id), self.encode(key))
            pipe.sadd(self._tenant_index(key.tenant), key.key_id)
            pipe.sadd(f"{self._prefix}:keys:_tenants", key.tenant)
            await pipe.execute()

    async def get(self, key_id: str) -> ApiKey | None:
        try:
            redis_key = self._key(key_id)
        except ValidationError:
            return None
        async with redis_errors("keys.get"):
            raw = await self._redis.get(redis_key)
        return None if raw is None else self.decode(raw)

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        async with redis_errors("keys.list"):
            if tenant is None:
                tenants = sorted(await self._redis.smembers(f"{self._prefix}:keys:_tenants"))
            else:
                tenants = [tenant]
            ids: list[str] = []
            for name in tenants:
                ids.extend(sorted(await self._redis.smembers(self._tenant_index(name))))
            raws = await self._redis.mget([self._key(i) for i in ids]) if ids else []
        return [self.decode(raw) for raw in raws if raw is not None]

    async def ping(self) -> None:
        async with redis_errors("keys.ping"):
            await self._redis.ping()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose(close_connection_pool=True)  # make_redis hands us the pool
