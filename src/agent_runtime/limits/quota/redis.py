"""Redis quota ledger: one Lua script call per reserve/settle, so every worker of a fleet shares the quotas.

Per bucket, ``<prefix>:q:<bucket>`` is a hash (``spent``, ``reserved``, one ``r:<id>`` field per live
reservation) and ``<prefix>:q:<bucket>:exp`` a sorted set of reservation ids by expiry. Each script
call first purges expired reservations (by the Redis server clock), so a killed worker's
reservations stop counting after their TTL. Keys expire a month after their window closes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from agent_runtime._redis import make_redis, redis_errors
from agent_runtime.limits.quota.base import Bucket, QuotaLedger
from agent_runtime.settings import RedisSettings

__all__ = ["QUOTA_LUA", "RedisQuotaLedger"]

QUOTA_LUA = resources.files("agent_runtime.limits").joinpath("lua/quota.lua").read_text()
_KEEP_AFTER_WINDOW_MS = 31 * 86_400_000


class RedisQuotaLedger(QuotaLedger):
    def __init__(
        self,
        url: str,
        settings: RedisSettings | None = None,
        *,
        client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock=clock)
        cfg = settings or RedisSettings()
        self._redis = client if client is not None else make_redis(url, cfg)
        self._owns_client = client is None
        self._prefix = f"{cfg.key_prefix}:q:"
        self._script = self._redis.register_script(QUOTA_LUA)

    async def _call(
        self, op: str, rid: str, ttl_ms: int | str, buckets: Sequence[Bucket], amounts: Sequence[int]
    ) -> list[int]:
        keys: list[str] = []
        args: list[Any] = [op, rid, ttl_ms]
        for b, amount in zip(buckets, amounts, strict=True):
            keys += [self._prefix + b.key, self._prefix + b.key + ":exp"]
            args += [b.limit, amount, int(b.window_end * 1000) + _KEEP_AFTER_WINDOW_MS]
        async with redis_errors(f"quota.{op}"):
            out = await self._script(keys=keys, args=args)
        return [int(x) for x in out]

    async def _reserve(
        self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int], ttl_s: float
    ) -> tuple[int, bool] | None:
        index, only_inflight = await self._call("reserve", rid, max(1, int(ttl_s * 1000)), buckets, amounts)
        return None if index == 0 else (index - 1, bool(only_inflight))

    async def _settle(self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int], op_id: str | None) -> None:
        await self._call("settle", rid, op_id or "", buckets, amounts)

    async def _adjust(self, buckets: Sequence[Bucket], amounts: Sequence[int], op_id: str | None) -> None:
        await self._call("adjust", "", op_id or "", buckets, amounts)

    async def _status(self, buckets: Sequence[Bucket]) -> list[tuple[int, int]]:
        out = await self._call("status", "", 0, buckets, [0] * len(buckets))
        return [(out[2 * i], out[2 * i + 1]) for i in range(len(buckets))]

    async def ping(self) -> None:
        async with redis_errors("quota.ping"):
            await self._redis.ping()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose(close_connection_pool=True)  # make_redis hands us the pool
