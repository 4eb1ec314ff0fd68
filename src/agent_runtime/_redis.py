"""One way to open Redis: a bounded blocking pool with connect and socket timeouts.

redis-py's default pool raises ``MaxConnectionsError`` once its cap is reached; the blocking pool
makes callers wait (up to ``pool_timeout``) instead. Every backend module uses this, so every
Redis call in the runtime is bounded in time.
"""

from __future__ import annotations

import re
from typing import Any

from agent_runtime.errors import BackendError, ValidationError
from agent_runtime.settings import RedisSettings

__all__ = ["REDIS_ERRORS", "check_key_part", "make_redis", "redis_errors"]

_SAFE_PART = re.compile(r"[A-Za-z0-9_.@:\-]{1,200}")


def make_redis(url: str, settings: RedisSettings | None = None, *, decode_responses: bool = True) -> Any:
    """An asyncio Redis client on a ``BlockingConnectionPool`` bounded by ``settings``."""
    import redis.asyncio as aioredis

    cfg = settings or RedisSettings()
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=cfg.max_connections,
        timeout=cfg.pool_timeout,
        socket_connect_timeout=cfg.connect_timeout,
        socket_timeout=cfg.socket_timeout,
        decode_responses=decode_responses,
        health_check_interval=30,
        retry_on_timeout=False,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes its sockets


def check_key_part(value: str, what: str = "id") -> str:
    """Refuse ids that could escape a key namespace (``*``, ``{``, spaces, newlines, huge)."""
    if not isinstance(value, str) or not _SAFE_PART.fullmatch(value) or "{" in value or "}" in value:
        raise ValidationError(f"malformed {what}: must be 1-200 characters of letters, digits and _.@:-")
    return value


def _redis_error_types() -> tuple[type[BaseException], ...]:
    try:
        import redis.exceptions as rexc
    except ImportError:  # pragma: no cover - redis is a core dependency
        return ()
    return (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError, rexc.ResponseError, OSError)


REDIS_ERRORS = _redis_error_types()


class redis_errors:  # noqa: N801 - used as a context manager, reads like one
    """``with redis_errors("sessions.get"):`` turns redis-py failures into ``BackendError``."""

    def __init__(self, operation: str) -> None:
        self.operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and isinstance(exc, REDIS_ERRORS) and not isinstance(exc, BackendError):
            raise BackendError(f"redis unavailable during {self.operation}: {type(exc).__name__}") from exc

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)
