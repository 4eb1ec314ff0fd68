"""The embedded store: LangGraph's own ``AsyncSqliteStore`` on a file under ``DATA_DIR``.

It serialises every statement on one aiosqlite connection (its own lock); counting a prefix for the
tenant limit is one indexed ``COUNT(*)`` on the same connection. TTLs (``ttl`` in minutes on a put)
are honoured: expired items are removed by LangGraph's sweeper, every ``SWEEP_MINUTES``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langgraph.store.base import Op, Result, TTLConfig
from langgraph.store.sqlite.aio import AsyncSqliteStore

from agent_runtime._sqlite import sqlite_errors
from agent_runtime.errors import ConfigurationError
from agent_runtime.store.base import namespace_text

__all__ = ["SqliteStore", "open_sqlite_store"]

SWEEP_MINUTES = 1


def _glob_literal(text: str) -> str:
    """``text`` matched literally by GLOB (which has no ESCAPE clause): metacharacters in a class."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


class SqliteStore(AsyncSqliteStore):
    """``AsyncSqliteStore`` with a prefix count and ``aclose`` (sweeper stopped, connection closed)."""

    supports_ttl = True  # it writes and sweeps expiries, but inherits BaseStore's False before its base's True

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        async with sqlite_errors("store"):
            return await super().abatch(ops)

    async def acount_items(self, prefix: tuple[str, ...]) -> int:
        text = namespace_text(prefix)
        async with (
            sqlite_errors("store count"),
            self.lock,
            self.conn.execute(
                "SELECT COUNT(*) FROM store WHERE prefix = ? OR prefix GLOB ?", (text, _glob_literal(text) + ".*")
            ) as cursor,
        ):
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def aclose(self) -> None:
        await self.stop_ttl_sweeper(timeout=5)
        await self.conn.close()


async def open_sqlite_store(path: Path, *, index: Any = None) -> SqliteStore:
    """Open (and create or migrate) the store file, with its TTL sweeper running; ``index``: LangGraph's
    index config (vectors in sqlite-vec)."""
    import sqlite3

    import aiosqlite

    if index is not None and not hasattr(sqlite3.Connection, "enable_load_extension"):
        raise ConfigurationError(
            "store.index_embed: this Python's sqlite3 cannot load extensions (sqlite-vec); "
            "use the memory or PostgreSQL store for semantic search"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA busy_timeout=5000")
    ttl: TTLConfig = {"refresh_on_read": True, "sweep_interval_minutes": SWEEP_MINUTES}
    store = SqliteStore(conn, ttl=ttl, index=index)
    await store.setup()
    await store.start_ttl_sweeper()
    return store
