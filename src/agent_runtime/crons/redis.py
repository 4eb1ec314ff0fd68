"""Redis schedules, shared by every scheduler of a fleet.

Keys (``ar`` is the key prefix; one hash tag, so a transaction stays in one Cluster slot)::

    ar:{crons}:rec:<cron_id>            string  Schedule JSON
    ar:{crons}:t:<tenant>               set     the tenant's cron ids (for list and the cap)
    ar:{crons}:due                      zset    cron_id -> next_run_at, enabled schedules with a tick left
    ar:{crons}:tick:<cron_id>:<tick>    string  a claimed tick: ``SET NX`` with an expiry of ``tick_retention_s``

Writes are ``WATCH`` / ``MULTI`` compare-and-sets, retried when another client changed a watched key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.exceptions import WatchError

from agent_runtime._redis import make_redis, redis_errors
from agent_runtime.crons.base import DEFAULT_MAX_PER_TENANT, DEFAULT_TICK_RETENTION_S, CronStore, matches, too_many
from agent_runtime.crons.schedule import Schedule
from agent_runtime.settings import RedisSettings

__all__ = ["RedisCronStore"]


class RedisCronStore(CronStore):
    def __init__(
        self,
        url: str,
        settings: RedisSettings | None = None,
        *,
        max_per_tenant: int = DEFAULT_MAX_PER_TENANT,
        tick_retention_s: float = DEFAULT_TICK_RETENTION_S,
        client: Any = None,
    ) -> None:
        super().__init__(max_per_tenant=max_per_tenant, tick_retention_s=tick_retention_s)
        cfg = settings or RedisSettings()
        self._redis = client if client is not None else make_redis(url, cfg)
        self._owns_client = client is None
        self._base = f"{cfg.key_prefix}:{{crons}}"
        self._due = f"{self._base}:due"

    def _rec(self, cron_id: str) -> str:
        return f"{self._base}:rec:{cron_id}"

    def _tenant(self, tenant: str) -> str:
        return f"{self._base}:t:{tenant}"

    def _queue_write(self, pipe: Any, schedule: Schedule) -> None:
        pipe.set(self._rec(schedule.cron_id), schedule.to_json())
        pipe.sadd(self._tenant(schedule.tenant), schedule.cron_id)
        if schedule.enabled and schedule.next_run_at is not None:
            pipe.zadd(self._due, {schedule.cron_id: schedule.next_run_at})
        else:
            pipe.zrem(self._due, schedule.cron_id)

    async def create(self, schedule: Schedule) -> None:
        index = self._tenant(schedule.tenant)
        async with redis_errors("crons.create"), self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(index)
                    if await pipe.scard(index) >= self.max_per_tenant:
                        raise too_many(schedule.tenant, self.max_per_tenant)
                    pipe.multi()
                    self._queue_write(pipe, schedule)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

    async def _load(self, cron_ids: list[str]) -> list[Schedule]:
        if not cron_ids:
            return []
        raws = await self._redis.mget([self._rec(cron_id) for cron_id in cron_ids])
        return [Schedule.from_json(raw) for raw in raws if raw is not None]

    async def get(self, cron_id: str, *, tenant: str | None = None) -> Schedule | None:
        async with redis_errors("crons.get"):
            raw = await self._redis.get(self._rec(cron_id))
        schedule = None if raw is None else Schedule.from_json(raw)
        if schedule is None or (tenant is not None and schedule.tenant != tenant):
            return None
        return schedule

    async def tenant_schedules(self, tenant: str) -> list[Schedule]:
        async with redis_errors("crons.list"):
            cron_ids = sorted(await self._redis.smembers(self._tenant(tenant)))
            return [s for s in await self._load(cron_ids) if s.tenant == tenant]

    async def _change(self, cron_id: str, tenant: str | None, match: Mapping[str, Any] | None, changes: Any) -> Any:
        """The compare-and-set behind ``update`` and ``delete`` (``changes`` ``None``: delete)."""
        key = self._rec(cron_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    schedule = None if raw is None else Schedule.from_json(raw)
                    if schedule is None or (tenant is not None and schedule.tenant != tenant):
                        return None
                    if not matches(schedule, match):
                        return None
                    pipe.multi()
                    if changes is None:
                        pipe.delete(key)
                        pipe.srem(self._tenant(schedule.tenant), cron_id)
                        pipe.zrem(self._due, cron_id)
                        await pipe.execute()
                        return schedule
                    updated = Schedule.model_validate(schedule.model_dump() | changes)
                    self._queue_write(pipe, updated)
                    await pipe.execute()
                    return updated
                except WatchError:
                    continue

    async def update(
        self, cron_id: str, *, tenant: str | None = None, match: Mapping[str, Any] | None = None, **changes: Any
    ) -> Schedule | None:
        async with redis_errors("crons.update"):
            updated: Schedule | None = await self._change(cron_id, tenant, match, changes)
        return updated

    async def delete(self, cron_id: str, *, tenant: str | None = None) -> bool:
        async with redis_errors("crons.delete"):
            return await self._change(cron_id, tenant, None, None) is not None

    async def due(self, now: float, limit: int = 100) -> list[Schedule]:
        async with redis_errors("crons.due"):
            cron_ids = await self._redis.zrangebyscore(self._due, "-inf", now, start=0, num=limit)
            found = await self._load(cron_ids)
        return [s for s in found if s.enabled and s.next_run_at is not None and s.next_run_at <= now]

    async def claim_tick(self, cron_id: str, tick_at: float, now: float) -> bool:
        key = f"{self._base}:tick:{cron_id}:{tick_at!r}"
        async with redis_errors("crons.claim"):
            claimed = await self._redis.set(key, repr(now), nx=True, px=max(1, int(self.tick_retention_s * 1000)))
        return bool(claimed)

    async def ping(self) -> None:
        async with redis_errors("crons.ping"):
            await self._redis.ping()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose(close_connection_pool=True)
