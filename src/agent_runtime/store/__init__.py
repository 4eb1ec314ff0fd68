"""Long-term memory: LangGraph ``BaseStore`` per backend, confined to the caller's tenant.

``build_store(settings)`` is the one place a backend is chosen (``state_backend``: memory, SQLite
under ``DATA_DIR``, Redis). Callers never use the backend directly: HTTP routes wrap it in a
``TenantStore`` for the request's principal, agents get a ``RunScopedStore`` that confines every
call to the run's owner.
"""

from __future__ import annotations

from typing import Any

from langgraph.store.base import BaseStore

from agent_runtime.errors import ConfigurationError
from agent_runtime.settings import Settings
from agent_runtime.store.agent import STORE_SCOPE_KEY, RunScopedStore, scope_config
from agent_runtime.store.base import CountingStore, matches_filter
from agent_runtime.store.confined import StoreScope, TenantStore, check_namespace

__all__ = [
    "STORE_SCOPE_KEY",
    "CountingStore",
    "RunScopedStore",
    "StoreScope",
    "TenantStore",
    "build_store",
    "check_namespace",
    "matches_filter",
    "scope_config",
]


async def build_store(settings: Settings) -> BaseStore:
    """The store backend of ``settings.state_backend`` (it has ``acount_items`` and ``aclose``), with
    a semantic index when ``store.index_embed`` is set."""
    index = _index(settings)
    if settings.state_backend == "memory":
        from agent_runtime.store.memory import MemoryStore

        return MemoryStore(index=index)  # type: ignore[arg-type]
    if settings.state_backend == "sqlite":
        from agent_runtime.store.sqlite import open_sqlite_store

        return await open_sqlite_store(settings.data_dir / "store.sqlite3", index=index)
    if index is not None:
        raise ConfigurationError("store.index_embed: the Redis store has no semantic index (use memory or SQLite)")
    from agent_runtime.store.redis import RedisStore

    return RedisStore(settings.redis_url, settings.redis)


def _index(settings: Settings) -> dict[str, Any] | None:
    spec = settings.store.index_embed
    if not spec:
        return None
    from agent_runtime.store.embeddings import resolve_embeddings

    dims = settings.store.index_dims
    try:
        embed = resolve_embeddings(spec, dims)
    except Exception as exc:  # a missing provider package or key: say which setting
        raise ConfigurationError(f"store.index_embed {spec!r}: {exc}") from exc
    return {"dims": dims, "embed": embed, "fields": list(settings.store.index_fields)}
