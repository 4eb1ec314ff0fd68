"""One way to open SQLite: WAL journal, a busy timeout, and our errors instead of sqlite3's.

Two kinds of connection: ``connect_sqlite`` (aiosqlite: statements run in its thread, for anything
that may take a while) and ``connect_sqlite_inline`` (plain ``sqlite3`` used on the event loop, for
the few short transactions every request makes). Each hop to aiosqlite's thread has to win the GIL
back from a busy event loop, up to a switch interval (5 ms) per statement, so a six-statement
transaction could take tens of ms under load; inline it takes tens of microseconds, at the price of
blocking the loop while another process holds the write lock (bounded by its busy timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent_runtime.errors import BackendError

__all__ = [
    "connect_sqlite",
    "connect_sqlite_inline",
    "sqlite_errors",
    "sqlite_fetch",
    "sqlite_ping",
    "sqlite_transaction",
]


async def connect_sqlite(path: Path | str, schema: str = "") -> Any:
    """An ``aiosqlite`` connection in WAL mode that waits up to 5 s for a lock held by another process,
    with ``schema`` (``CREATE ... IF NOT EXISTS`` statements) applied.

    It is in autocommit mode: a statement outside ``sqlite_transaction`` commits by itself. With
    sqlite3's default (an implicit deferred ``BEGIN`` before each write) a write that failed with
    "database is locked" left the connection inside that transaction, on a stale WAL snapshot, so
    every later write on it failed at once (``SQLITE_BUSY_SNAPSHOT``) until the process restarted.
    """
    import aiosqlite

    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = await aiosqlite.connect(str(path), timeout=5.0, isolation_level=None)
        await conn.execute("PRAGMA busy_timeout=5000")
        await _enable_wal(conn)
        await conn.execute("PRAGMA synchronous=NORMAL")
        if schema:
            await conn.executescript(schema)
    except sqlite3.Error as exc:
        raise BackendError(f"cannot open SQLite database {path}: {exc}") from exc
    conn.row_factory = aiosqlite.Row
    return conn


def connect_sqlite_inline(path: Path | str, schema: str = "", *, busy_timeout_s: float = 1.0) -> sqlite3.Connection:
    """A plain connection in WAL mode and autocommit (callers write ``BEGIN IMMEDIATE`` / ``COMMIT``)
    for short transactions on the event loop; ``busy_timeout_s`` bounds how long a lock held by another
    process may block the loop before the operation fails with ``BackendError``."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        for attempt in range(50):  # see _enable_wal
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.02)
        conn.execute("PRAGMA synchronous=NORMAL")
        if schema:
            conn.executescript(schema)
    except sqlite3.Error as exc:
        raise BackendError(f"cannot open SQLite database {path}: {exc}") from exc
    return conn


async def _enable_wal(conn: Any) -> None:
    """Switching to WAL needs a moment of exclusive access, and SQLite answers "locked" at once (no
    busy wait) when another connection opens the same new file at the same time: try again briefly."""
    for attempt in range(50):
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            await asyncio.sleep(0.02)


@asynccontextmanager
async def sqlite_transaction(conn: Any, operation: str) -> AsyncIterator[Any]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on an autocommit ``connect_sqlite`` connection, rolled back on any
    error or cancellation so the connection never stays inside a transaction.

    IMMEDIATE takes the write lock up front, so a busy database is waited for (busy timeout) instead
    of failing when a read would have to be upgraded to a write on an outdated snapshot. The caller
    serialises transactions on one connection (an ``asyncio.Lock``): statements of two tasks would
    otherwise share the transaction."""
    async with sqlite_errors(operation):
        await conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await asyncio.shield(conn.execute("ROLLBACK"))
            raise


class sqlite_errors:  # noqa: N801 - used as a context manager, reads like one
    """``async with sqlite_errors("keys.create"):`` turns sqlite3 failures into ``BackendError``."""

    def __init__(self, operation: str) -> None:
        self.operation = operation

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and isinstance(exc, sqlite3.Error):
            raise BackendError(f"SQLite failed during {self.operation}: {exc}") from exc


async def sqlite_fetch(conn: Any, operation: str, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
    """All rows of a read outside a transaction, stepped to the end in one hop to aiosqlite's thread.

    A cursor read row by row (``fetchone`` then an ``await``) keeps its statement, and so a WAL
    read snapshot, open on the shared connection; a write another task runs on that connection in
    the meantime then fails at once with "database is locked" (``SQLITE_BUSY_SNAPSHOT``, no busy
    wait) whenever another connection committed since the snapshot was taken."""
    async with sqlite_errors(operation):
        return list(await conn.execute_fetchall(sql, args))


async def sqlite_ping(conn: Any, operation: str) -> None:
    """``SELECT 1`` on ``conn``: the readiness probe of an SQLite backend."""
    await sqlite_fetch(conn, operation, "SELECT 1")
