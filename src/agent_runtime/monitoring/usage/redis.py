"""Usage ledger in Redis, shared by every worker of a fleet.

Layout (``P`` is the key prefix)::

    P:usage:d:<tenant>:<YYYY-MM-DD>   hash  "<user>|<template>|<model>|<counter>" -> number
    P:usage:idx:<tenant>              zset  days that have a hash (score = date ordinal)
    P:usage:tenants                   set   tenants that have usage

A record is one MULTI/EXEC of HINCRBY / HINCRBYFLOAT (plus the index updates): one round trip,
applied whole or not at all, and increments from concurrent workers add up. A record carrying an
accounting journal op id is one Lua call instead, that first adds the id to ``P:usage:ops:<tenant>:<day>``
(a set expiring with the day's hash) and adds nothing if it was there: a replayed entry counts once.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from agent_runtime._redis import redis_errors
from agent_runtime.monitoring.usage.base import UsageQuery, UsageRecord, UsageStore

__all__ = ["RedisUsageStore"]

_INT_COUNTERS = ("input_tokens", "output_tokens", "cached_tokens", "runs")
_ADD_ONCE = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
local field = ARGV[2]
for i = 0, 3 do redis.call('HINCRBY', KEYS[1], field .. ARGV[3 + 2 * i], ARGV[4 + 2 * i]) end
redis.call('HINCRBYFLOAT', KEYS[1], field .. 'cost_usd', ARGV[11])
redis.call('ZADD', KEYS[3], ARGV[13], ARGV[12])
redis.call('SADD', KEYS[4], ARGV[14])
if ARGV[15] ~= '' then
  redis.call('EXPIRE', KEYS[1], ARGV[15])
  redis.call('EXPIRE', KEYS[2], ARGV[15])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[16])
end
return 1
"""


class RedisUsageStore(UsageStore):
    """The ledger on a ``redis.asyncio.Redis`` client made by ``_redis.make_redis`` (decoded responses).

    Args:
        client: the Redis client; closed by :meth:`aclose` only if ``owns_client``.
        prefix: key prefix shared with the other Redis backends of the runtime.
        retention_days: keep per-day hashes this long (None: forever).
    """

    def __init__(
        self, client: Any, *, prefix: str = "ar", retention_days: int | None = None, owns_client: bool = True
    ) -> None:
        self.client = client
        self.prefix = f"{prefix}:usage"
        self.retention_days = retention_days
        self.owns_client = owns_client
        self._script_add_once = client.register_script(_ADD_ONCE)

    def _day_key(self, tenant: str, day: date) -> str:
        return f"{self.prefix}:d:{tenant}:{day.isoformat()}"

    def _index_key(self, tenant: str) -> str:
        return f"{self.prefix}:idx:{tenant}"

    async def _add(self, record: UsageRecord, op_id: str | None) -> None:
        key = self._day_key(record.tenant, record.day)
        field = f"{record.user}|{record.template}|{record.model}|"
        index = self._index_key(record.tenant)
        if op_id is not None:
            await self._add_once(record, op_id, key, field, index)
            return
        async with redis_errors("usage.add"), self.client.pipeline(transaction=True) as pipe:
            for name in _INT_COUNTERS:
                pipe.hincrby(key, field + name, getattr(record, name))
            pipe.hincrbyfloat(key, field + "cost_usd", record.cost_usd)
            pipe.zadd(index, {record.day.isoformat(): record.day.toordinal()})
            pipe.sadd(f"{self.prefix}:tenants", record.tenant)
            if self.retention_days is not None:
                pipe.expire(key, (self.retention_days + 1) * 86400)
                pipe.zremrangebyscore(index, "-inf", (record.day - timedelta(days=self.retention_days)).toordinal())
            await pipe.execute()

    async def _add_once(self, record: UsageRecord, op_id: str, key: str, field: str, index: str) -> None:
        ops = f"{self.prefix}:ops:{record.tenant}:{record.day.isoformat()}"
        counters = [x for name in _INT_COUNTERS for x in (name, getattr(record, name))]
        keep = "" if self.retention_days is None else (self.retention_days + 1) * 86400
        oldest = "" if self.retention_days is None else (record.day - timedelta(days=self.retention_days)).toordinal()
        args = [op_id, field, *counters, repr(record.cost_usd), record.day.isoformat(), record.day.toordinal()]
        args += [record.tenant, keep, oldest]
        async with redis_errors("usage.add"):
            await self._script_add_once(keys=[key, ops, index, f"{self.prefix}:tenants"], args=args)

    async def _scan(self, query: UsageQuery) -> list[UsageRecord]:
        low = query.since.toordinal() if query.since else "-inf"
        high = query.until.toordinal() if query.until else "+inf"
        async with redis_errors("usage.scan"):
            if query.tenant is not None:
                tenants = [query.tenant]
            else:
                tenants = sorted(await self.client.smembers(f"{self.prefix}:tenants"))
            async with self.client.pipeline(transaction=False) as pipe:
                for tenant in tenants:
                    pipe.zrangebyscore(self._index_key(tenant), low, high)
                day_lists: list[list[str]] = await pipe.execute()
            cells = [(t, date.fromisoformat(d)) for t, days in zip(tenants, day_lists, strict=True) for d in days]
            async with self.client.pipeline(transaction=False) as pipe:
                for tenant, day in cells:
                    pipe.hgetall(self._day_key(tenant, day))
                hashes: list[dict[str, str]] = await pipe.execute()
        records: list[UsageRecord] = []
        for (tenant, day), counters in zip(cells, hashes, strict=True):
            records.extend(rec for rec in _parse_day(tenant, day, counters) if query.matches(rec))
        return records

    async def ping(self) -> None:
        async with redis_errors("usage.ping"):
            await self.client.ping()

    async def aclose(self) -> None:
        if self.owns_client:
            await self.client.aclose()


def _parse_day(tenant: str, day: date, counters: dict[str, str]) -> list[UsageRecord]:
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for field, value in counters.items():
        user, template, model, name = field.split("|", 3)
        cells.setdefault((user, template, model), {})[name] = float(value) if name == "cost_usd" else int(value)
    return [
        UsageRecord(tenant=tenant, user=user, template=template, model=model, day=day, **values)
        for (user, template, model), values in cells.items()
    ]
