"""One way to talk to PostgreSQL: a bounded psycopg 3 pool, timeouts, the circuit breaker, our errors.

Every PostgreSQL store holds a ``PgClient``. It opens its ``AsyncConnectionPool`` lazily, inside the
running loop (``max_connections`` connections at most; a caller waits ``pool_timeout`` for one, then
gets ``BackendError``), with a connect timeout and a server-side ``statement_timeout`` on every
connection, and applies the schema migrations once (``_pg_schema``) before the first statement.

Failures are translated once, here: any ``psycopg.Error`` (and a pool timeout) becomes
``BackendError`` (503). Connection-level failures and timeouts count towards the server's circuit
breaker (``use_circuit_breaker``, one per ``host:port`` per process, like Redis's); while it is open,
calls are refused before they touch the pool. After a failure the idle connections are checked
before the next call, so a restarted server costs one failure, not one per pooled connection.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg
import psycopg.errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent_runtime._breaker import CircuitBreaker, probing
from agent_runtime._pg_schema import LATEST, ensure_schema
from agent_runtime.errors import BackendError
from agent_runtime.settings import PostgresSettings

__all__ = ["PgClient", "circuit_breaker", "migrate_url", "pg_errors", "use_circuit_breaker"]

log = logging.getLogger("agent_runtime.postgres")

_BREAKERS: dict[str, CircuitBreaker] = {}
"""Process-wide on purpose, as for Redis: every pool of one server in this process shares its fate."""


def _server_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"


def use_circuit_breaker(url: str, *, failures: int = 5, cooldown_s: float = 2.0) -> CircuitBreaker:
    """The breaker of the PostgreSQL server at ``url`` for this process, created (or re-tuned) now."""
    key = _server_key(url)
    breaker = _BREAKERS.get(key)
    if breaker is None:
        breaker = _BREAKERS[key] = CircuitBreaker(f"postgres {key}", failures=failures, cooldown_s=cooldown_s)
    else:
        breaker.failure_threshold, breaker.cooldown_s = failures, cooldown_s
    return breaker


def circuit_breaker(url: str) -> CircuitBreaker | None:
    return _BREAKERS.get(_server_key(url))


def _is_outage(exc: BaseException) -> bool:
    """Connection lost, refused or timed out: what the breaker counts (a conflict or a bad query is not)."""
    if isinstance(exc, psycopg.errors.TransactionRollback):  # serialization failure, deadlock: retry material
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | PoolTimeout | OSError)


class pg_errors:  # noqa: N801 - used as a context manager, reads like one
    """``async with pg_errors("keys.get", breaker):`` turns psycopg failures into ``BackendError``."""

    def __init__(self, operation: str, breaker: CircuitBreaker | None = None) -> None:
        self.operation = operation
        self.breaker = breaker

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            if self.breaker is not None:
                self.breaker.record_success()
            return
        if isinstance(exc, psycopg.Error | PoolTimeout | OSError) and not isinstance(exc, BackendError):
            if self.breaker is not None and _is_outage(exc):
                self.breaker.record_failure()
            raise BackendError(f"postgres unavailable during {self.operation}: {type(exc).__name__}") from exc


class PgClient:
    """A lazily opened, bounded pool for one store, with the schema applied before first use.

    Args:
        url: ``postgresql://user@host:port/db``.
        settings: pool bounds and timeouts.
        name: what the pool serves (logs, ``application_name``).
        row_factory: psycopg row factory of the pool's connections (tuples by default).
        prepare_threshold: psycopg's (``0``: prepare every statement, as LangGraph's saver wants).
        min_connections: the least ``max_connections`` this client may be given.

    Connections are in autocommit; multi-statement changes use ``transaction()``.
    """

    def __init__(
        self,
        url: str,
        settings: PostgresSettings | None = None,
        *,
        name: str = "postgres",
        row_factory: Any = None,
        prepare_threshold: int | None = 5,
        min_connections: int = 1,
    ) -> None:
        self.url = url
        self.cfg = settings or PostgresSettings()
        self.name = name
        self._row_factory = row_factory
        self._prepare_threshold = prepare_threshold
        self._pool: AsyncConnectionPool[Any] | None = None
        self._seen_failures = 0
        self._ready = False
        self.max_connections = max(min_connections, self.cfg.max_connections)

    @property
    def breaker(self) -> CircuitBreaker | None:
        return circuit_breaker(self.url)

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(self.cfg.connect_timeout)),
            "prepare_threshold": self._prepare_threshold,
            "application_name": f"agent-runtime {self.name}",
        }
        if self.cfg.statement_timeout_ms:
            kwargs["options"] = f"-c statement_timeout={self.cfg.statement_timeout_ms}"
        if self._row_factory is not None:
            kwargs["row_factory"] = self._row_factory
        return kwargs

    @property
    def raw_pool(self) -> AsyncConnectionPool[Any]:
        """The pool, not necessarily opened yet (for clients such as LangGraph's saver that take a pool)."""
        if self._pool is None:
            self._pool = AsyncConnectionPool(
                self.url,
                min_size=min(self.cfg.min_connections, self.max_connections),
                max_size=self.max_connections,
                timeout=self.cfg.pool_timeout,
                # psycopg retries a failed connect with a backoff doubling from 1 s; giving up early lets
                # the next caller start a fresh attempt at once, so a restarted server is seen in seconds
                reconnect_timeout=max(2.0, 2 * self.cfg.connect_timeout),
                kwargs=self._kwargs(),
                open=False,
                name=self.name,
            )
        return self._pool

    async def pool(self) -> AsyncConnectionPool[Any]:
        """The opened pool (opening it now if needed; no connection is awaited here)."""
        pool = self.raw_pool
        if pool.closed:
            await pool.open(wait=False)
        return pool

    def admit(self) -> CircuitBreaker | None:
        """The server's breaker, after checking it lets a call through (``BackendError`` when open)."""
        breaker = self.breaker
        if breaker is not None and not probing() and not breaker.allow():
            raise BackendError(
                f"postgres unavailable: circuit open for {breaker.name}", retry_after=max(breaker.retry_after, 0.001)
            )
        return breaker

    @contextlib.asynccontextmanager
    async def connection(self, operation: str) -> AsyncIterator[Any]:
        """A pooled connection with the schema in place; failures inside become ``BackendError``."""
        breaker = self.admit()
        async with pg_errors(operation, breaker):
            pool = await self.pool()
            if breaker is not None and self._seen_failures != breaker.total_failures:
                self._seen_failures = breaker.total_failures
                await pool.check()  # drop idle connections a restarted server closed
            if not self._ready:
                await self._prepare(pool)
            async with pool.connection() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def transaction(self, operation: str) -> AsyncIterator[Any]:
        """One short transaction (committed on exit, rolled back on any error or cancellation)."""
        async with self.connection(operation) as conn, conn.transaction():
            yield conn

    async def _prepare(self, pool: AsyncConnectionPool[Any]) -> None:
        async with pool.connection() as conn:
            await ensure_schema(conn, migrate=self.cfg.migrate_on_start)
        self._ready = True

    async def fetch(self, operation: str, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        async with self.connection(operation) as conn:
            cur = await conn.execute(sql, args)
            return list(await cur.fetchall())

    async def execute(self, operation: str, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> int:
        """One autocommit statement; the number of rows it touched."""
        async with self.connection(operation) as conn:
            cur = await conn.execute(sql, args)
            return int(cur.rowcount)

    async def ping(self, operation: str) -> None:
        await self.fetch(operation, "SELECT 1")

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close(timeout=2.0)


async def migrate_url(url: str, *, target: int = LATEST, connect_timeout: float = 5.0) -> list[int]:
    """Apply the pending migrations (up to ``target``) to the database at ``url``; the versions applied."""
    async with pg_errors("migrate"):
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=max(1, round(connect_timeout))
        )
        async with conn:
            return await ensure_schema(conn, target=target)
