"""The key store seam: one small ABC, one module per backend (memory, SQLite, Redis).

Stores hold ``ApiKey`` records (hash only) as JSON; the shared encode/decode lives here so the
backends differ only in where the bytes go.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from agent_runtime.errors import BackendError
from agent_runtime.security.record import ApiKey

__all__ = ["KeyStore"]


class KeyStore(ABC):
    """Persistence of API key records, looked up by key id."""

    @abstractmethod
    async def put(self, key: ApiKey) -> None:
        """Insert or replace the record of ``key.key_id``."""

    @abstractmethod
    async def get(self, key_id: str) -> ApiKey | None:
        """The record, or ``None`` when no such key exists."""

    @abstractmethod
    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        """All records, or those of one tenant."""

    async def ping(self) -> None:
        """One cheap round trip to the backend (``/readyz``); raises ``BackendError`` when it is down."""
        return None

    async def aclose(self) -> None:
        """Release connections."""
        return None

    @staticmethod
    def encode(key: ApiKey) -> str:
        return key.model_dump_json()

    @staticmethod
    def decode(raw: str | bytes) -> ApiKey:
        try:
            return ApiKey.model_validate_json(raw)
        except ValueError as exc:
            raise BackendError("corrupt API key record in the key store") from exc
