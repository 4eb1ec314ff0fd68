"""Redis GCRA limiter: one Lua script call (one round trip) per decision, so N workers share a limit exactly.

The script reads the Redis server's clock (``TIME``), so workers with skewed clocks still agree.
Keys are ``<prefix>:rl:<limit key>``; callers put a ``{hash tag}`` in limit keys that must be decided
together, which keeps the script Redis Cluster compatible.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

from agent_runtime._redis import make_redis, redis_errors
from agent_runtime.limits.rate.base import Decision, Limit, Mode, RateLimiter
from agent_runtime.settings import RedisSettings

__all__ = ["GCRA_LUA", "RedisRateLimiter"]

GCRA_LUA = resources.files("agent_runtime.limits").joinpath("lua/gcra.lua").read_text()


class RedisRateLimiter(RateLimiter):
    def __init__(self, url: str, settings: RedisSettings | None = None, *, client: Any = None) -> None:
        cfg = settings or RedisSettings()
        self._redis = client if client is not None else make_redis(url, cfg)
        self._owns_client = client is None
        self._prefix = f"{cfg.key_prefix}:rl:"
        self._script = self._redis.register_script(GCRA_LUA)

    async def _decide(self, mode: Mode, limits: Sequence[Limit], cost: int) -> Decision:
        args: list[Any] = [mode, cost]
        for lim in limits:
            args += [lim.limit, int(lim.period_s * 1_000_000)]
        async with redis_errors("ratelimit.decide"):
            allowed, blocked, wait_us, remaining = await self._script(
                keys=[self._prefix + lim.key for lim in limits], args=args
            )
        return Decision(
            bool(allowed), int(wait_us) / 1_000_000, int(remaining), int(blocked) - 1 if int(blocked) else None
        )

    async def reset(self, keys: Sequence[str]) -> None:
        if keys:
            async with redis_errors("ratelimit.reset"):
                await self._redis.delete(*[self._prefix + key for key in keys])

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
