"""``redis_errors`` plus recovery: after a connection failure, drop the pool's idle connections.

redis-py discards a connection that failed, but connections idle in the pool while the server
restarted are stale too, and each would fail one later command. Dropping them on the first
failure lets the first command after Redis is back succeed, without restarting the runtime.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agent_runtime._redis import redis_errors
from agent_runtime.errors import BackendError

__all__ = ["redis_op"]


@contextlib.asynccontextmanager
async def redis_op(client: Any, operation: str) -> AsyncIterator[None]:
    """``async with redis_op(client, "sessions.get"):`` maps errors to ``BackendError`` and heals the pool."""
    try:
        async with redis_errors(operation):
            yield
    except BackendError as exc:
        if isinstance(exc.__cause__, (RedisConnectionError, RedisTimeoutError, OSError)):
            with contextlib.suppress(Exception):
                await client.connection_pool.disconnect(inuse_connections=False)
        raise
