"""Redis GCRA limiter: one Lua script call per decision, so N workers share a limit exactly.

The script reads the Redis server's clock (``TIME``), so workers with skewed clocks still agree.
Keys are ``<prefix>:rl:<limit key>``; callers put a ``{hash tag}`` in limit keys that must be decided
together, which keeps the script Redis Cluster compatible.

Decisions are the hottest Redis traffic of the runtime, so the limiter keeps one connection of the
pool for itself and batches opportunistically: a decision goes out at once when none is in flight;
those that arrive meanwhile wait for it and then go out together, pipelined (one round trip for all
of them). A lone caller never waits, a crowd needs far less than one round trip per decision, and
each decision is still its own atomic script call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from agent_runtime._redis import make_redis, redis_errors
from agent_runtime.errors import BackendError
from agent_runtime.limits.rate.base import Decision, Limit, Mode, RateLimiter
from agent_runtime.settings import RedisSettings

__all__ = ["GCRA_LUA", "RedisRateLimiter"]

GCRA_LUA = resources.files("agent_runtime.limits").joinpath("lua/gcra.lua").read_text()
_MAX_BATCH = 256

_Command = tuple[Any, ...]


class RedisRateLimiter(RateLimiter):
    """GCRA on Redis. One instance per event loop (like the redis-py client it wraps)."""

    def __init__(self, url: str, settings: RedisSettings | None = None, *, client: Any = None) -> None:
        cfg = settings or RedisSettings()
        self._redis = client if client is not None else make_redis(url, cfg)
        self._owns_client = client is None
        self._prefix = f"{cfg.key_prefix}:rl:"
        self._sha = self._redis.register_script(GCRA_LUA).sha
        self._conn: Any = None
        self._busy = False
        self._waiting: list[tuple[_Command, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def _decide(self, mode: Mode, limits: Sequence[Limit], cost: int) -> Decision:
        command: list[Any] = ["EVALSHA", self._sha, len(limits)]
        command += [self._prefix + lim.key for lim in limits]
        command += (mode, cost)
        for lim in limits:
            command += (lim.limit, int(lim.period_s * 1_000_000))
        reply = await self._call(tuple(command))
        allowed, blocked, wait_us, remaining = map(int, reply.split())
        return Decision(allowed == 1, wait_us / 1_000_000, remaining, blocked - 1 if blocked else None)

    async def _call(self, command: _Command) -> Any:
        if self._busy:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting.append((command, future))
            return await future
        self._busy = True
        try:
            (reply,) = await self._exchange([command])
        finally:
            if self._waiting:
                self._drainer = asyncio.get_running_loop().create_task(self._drain())
            else:
                self._busy = False
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _drain(self) -> None:
        """Send everything that queued up behind the last exchange, batch after batch, then go idle."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:_MAX_BATCH], self._waiting[_MAX_BATCH:]
                try:
                    replies: list[Any] = await self._exchange([command for command, _ in batch])
                except Exception as exc:
                    replies = [exc] * len(batch)
                except BaseException:
                    for _, future in batch:
                        future.cancel()
                    raise
                for (_, future), reply in zip(batch, replies, strict=True):
                    if future.done():  # its caller was cancelled; the decision was still made
                        continue
                    if isinstance(reply, Exception):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        finally:
            for _, future in self._waiting:  # only left behind if the drainer itself was cancelled
                future.cancel()
            self._waiting = []
            self._busy = False

    async def _exchange(self, commands: list[_Command]) -> list[Any]:
        """Pipeline ``commands`` on our connection; error replies come back as exceptions in the list."""
        with redis_errors("ratelimit.decide"):
            replies = await self._roundtrip(commands)
            if any(isinstance(r, NoScriptError) for r in replies):  # a restarted server forgot the script
                await self._roundtrip([("SCRIPT", "LOAD", GCRA_LUA)])
                replies = await self._roundtrip(commands)
        return [BackendError(f"rate limit script failed: {r}") if isinstance(r, Exception) else r for r in replies]

    async def _roundtrip(self, commands: list[_Command]) -> list[Any]:
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._conn or await self._redis.connection_pool.get_connection()
            self._conn = conn
            try:
                await conn.send_packed_command(conn.pack_commands(commands))
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(await conn.read_response())
                    except ResponseError as exc:  # read in full: the stream is still in step
                        replies.append(exc)
                return replies
            except BaseException as exc:
                # Timeout, lost connection or cancellation mid-exchange: replies may be pending, so the
                # connection is never reused.
                self._conn = None
                await conn.disconnect()
                await self._redis.connection_pool.release(conn)
                # An idle connection the server closed (it restarted) never ran the commands: once more.
                if not (attempt == 1 and reused and isinstance(exc, RedisConnectionError)):
                    raise
        raise AssertionError("unreachable")

    async def reset(self, keys: Sequence[str]) -> None:
        if keys:
            async with redis_errors("ratelimit.reset"):
                await self._redis.delete(*[self._prefix + key for key in keys])

    async def ping(self) -> None:
        async with redis_errors("ratelimit.ping"):
            await self._redis.ping()

    async def aclose(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._redis.connection_pool.release(conn)
        if self._owns_client:
            await self._redis.aclose(close_connection_pool=True)  # make_redis hands us the pool
