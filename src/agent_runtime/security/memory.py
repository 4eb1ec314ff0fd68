"""In-process key store for tests and single-process development."""

from __future__ import annotations

from agent_runtime.security.base import KeyStore
from agent_runtime.security.record import ApiKey

__all__ = ["MemoryKeyStore"]


class MemoryKeyStore(KeyStore):
    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}

    async def put(self, key: ApiKey) -> None:
        self._keys[key.key_id] = key

    async def get(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        return [k for k in self._keys.values() if tenant is None or k.tenant == tenant]
