"""Usage ledger in Redis, shared by every worker of a fleet.

Layout (``P`` is the key prefix)::

    P:usage:d:<tenant>:<YYYY-MM-DD>   hash  "<user>|<template>|<model>|<counter>" -> number
    P:usage:idx:<tenant>              zset  days that have a hash (score = date ordinal)
    P:usage:tenants                   set   tenants that have usage

A record is one MULTI/EXEC of HINCRBY / HINCRBYFLOAT (plus the index updates): one round trip,
applied whole or not at all, and increments from concurrent workers add up.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from agent_runtime._redis import redis_errors
from agent_runtime.monitoring.usage.base import UsageQuery, UsageRecord, UsageStore

__all__ = ["RedisUsageStore"]

_INT_COUNTERS = ("input_tokens", "output_tokens", "cached_tokens", "runs")


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

    def _day_key(self, tenant: str, day: date) -> str:
        return f"{self.prefix}:d:{tenant}:{day.isoformat()}"

    def _index_key(self, tenant: str) -> str:
        return f"{self.prefix}:idx:{tenant}"

    async def _add(self, record: UsageRecord) -> None:
        key = self._day_key(record.tenant, record.day)
        field = f"{record.user}|{record.template}|{record.model}|"
        index = self._index_key(record.tenant)
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
