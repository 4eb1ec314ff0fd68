"""One way to open Redis: a bounded blocking pool with connect and socket timeouts.

redis-py's default pool raises ``MaxConnectionsError`` once its cap is reached; the blocking pool
makes callers wait (up to ``pool_timeout``) instead. Every backend module uses this, so every
Redis call in the runtime is bounded in time.

A process may install one ``CircuitBreaker`` per Redis server (``use_circuit_breaker``; the
``Runtime`` does it from ``settings.reliability``). Clients made afterwards for that server share
it: their connections report failures and successes to it, and their pool refuses calls at once
(``CircuitOpenError``, mapped to ``BackendError``) while it is open. ``/readyz`` probes inside
``breaker_probe()``, which goes through an open breaker, so readiness reflects the server itself.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from agent_runtime._breaker import CircuitBreaker, breaker_probe, probing
from agent_runtime.errors import BackendError, ValidationError
from agent_runtime.settings import RedisSettings

__all__ = [
    "REDIS_ERRORS",
    "CircuitOpenError",
    "breaker_probe",
    "check_key_part",
    "circuit_breaker",
    "make_redis",
    "redis_errors",
    "use_circuit_breaker",
]

_SAFE_PART = re.compile(r"[A-Za-z0-9_.@:\-]{1,200}")
_BREAKERS: dict[str, CircuitBreaker] = {}
"""Process-wide on purpose: every client of one server in this process shares that server's fate."""
_FAILURES = (rexc.ConnectionError, rexc.TimeoutError)


class CircuitOpenError(rexc.ConnectionError):
    """Refused without touching the network: the server's circuit breaker is open."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        super().__init__(f"circuit open for {breaker.name}")
        self.retry_after = max(breaker.retry_after, 0.001)


def _server_key(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"


def use_circuit_breaker(url: str, *, failures: int = 5, cooldown_s: float = 2.0) -> CircuitBreaker:
    """The breaker of the Redis server at ``url`` for this process, created (or re-tuned) now; clients
    that ``make_redis`` builds for that server from now on share it."""
    key = _server_key(url)
    breaker = _BREAKERS.get(key)
    if breaker is None:
        breaker = _BREAKERS[key] = CircuitBreaker(f"redis {key}", failures=failures, cooldown_s=cooldown_s)
    else:
        breaker.failure_threshold, breaker.cooldown_s = failures, cooldown_s
    return breaker


def circuit_breaker(url: str) -> CircuitBreaker | None:
    """The breaker installed for the server at ``url``, if any."""
    return _BREAKERS.get(_server_key(url))


class _GuardedPool(aioredis.BlockingConnectionPool):
    """Refuses at once while the breaker is open, before waiting for or opening a connection.

    After any client of the server saw a failure, idle connections opened before it are dropped:
    if the server restarted they are all dead, and each would otherwise fail one request."""

    breaker: CircuitBreaker
    seen_failures = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        breaker = self.breaker
        if not probing() and not breaker.allow():
            raise CircuitOpenError(breaker)
        if self.seen_failures != breaker.total_failures:
            self.seen_failures = breaker.total_failures
            await self.disconnect(inuse_connections=False)
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]


class _GuardedConnection:
    """Mixed in front of the pool's connection class: every connect, send and reply reports to the breaker."""

    breaker: CircuitBreaker

    async def connect(self) -> None:
        try:
            await super().connect()  # type: ignore[misc]
        except _FAILURES:
            self.breaker.record_failure()
            raise

    async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().send_packed_command(*args, **kwargs)  # type: ignore[misc]
        except _FAILURES:
            self.breaker.record_failure()
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            response = await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except _FAILURES:
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return response


def _guarded_connection_class(base: type[Any], breaker: CircuitBreaker) -> type[Any]:
    return type(f"Guarded{base.__name__}", (_GuardedConnection, base), {"breaker": breaker})


def make_redis(url: str, settings: RedisSettings | None = None, *, decode_responses: bool = True) -> Any:
    """An asyncio Redis client on a ``BlockingConnectionPool`` bounded by ``settings`` (and guarded by the
    server's circuit breaker when the process installed one)."""
    cfg = settings or RedisSettings()
    breaker = _BREAKERS.get(_server_key(url))
    pool_class = aioredis.BlockingConnectionPool if breaker is None else _GuardedPool
    pool = pool_class.from_url(
        url,
        max_connections=cfg.max_connections,
        timeout=cfg.pool_timeout,
        socket_connect_timeout=cfg.connect_timeout,
        socket_timeout=cfg.socket_timeout,
        decode_responses=decode_responses,
        health_check_interval=30,
        retry_on_timeout=False,
        # one immediate retry on a fresh connection: after a server restart a pooled connection can
        # pass the pool's liveness check and still be closed, which would fail one call per connection
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[rexc.ConnectionError],
    )
    if isinstance(pool, _GuardedPool) and breaker is not None:
        pool.breaker, pool.seen_failures = breaker, breaker.total_failures
        pool.connection_class = _guarded_connection_class(pool.connection_class, breaker)
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes its sockets


def check_key_part(value: str, what: str = "id") -> str:
    """Refuse ids that could escape a key namespace (``*``, ``{``, spaces, newlines, huge)."""
    if not isinstance(value, str) or not _SAFE_PART.fullmatch(value) or "{" in value or "}" in value:
        raise ValidationError(f"malformed {what}: must be 1-200 characters of letters, digits and _.@:-")
    return value


REDIS_ERRORS: tuple[type[BaseException], ...] = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.BusyLoadingError,
    rexc.ResponseError,
    OSError,
)


class redis_errors:  # noqa: N801 - used as a context manager, reads like one
    """``with redis_errors("sessions.get"):`` turns redis-py failures into ``BackendError``."""

    def __init__(self, operation: str) -> None:
        self.operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and isinstance(exc, REDIS_ERRORS) and not isinstance(exc, BackendError):
            retry_after = exc.retry_after if isinstance(exc, CircuitOpenError) else None
            raise BackendError(
                f"redis unavailable during {self.operation}: {type(exc).__name__}", retry_after=retry_after
            ) from exc

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)
