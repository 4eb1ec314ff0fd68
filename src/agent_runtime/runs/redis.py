"""Redis run records, shared by every worker of a fleet.

Keys (``ar`` is the key prefix; one hash tag, so a transaction stays in one Cluster slot)::

    ar:{runs}:rec:<run_id>     string  Run JSON; no expiry while active, ``ttl_s`` once finished
    ar:{runs}:t:<tenant>       zset    run_id -> created_at: the tenant's runs, for list and the cap
    ar:{runs}:pending          zset    run_id -> created_at: pending runs, oldest first
    ar:{runs}:leases           zset    run_id -> lease_until: running runs held by a queue worker
    ar:{runs}:a:<tenant>:<session>  set  the session's pending and running runs (gone once empty)

A status change is a ``WATCH`` / ``MULTI`` compare-and-set on the record key, retried when another
client changed it meanwhile. Index entries of records that expired are dropped when a ``find`` meets them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from redis.exceptions import WatchError

from agent_runtime._redis import make_redis, redis_errors
from agent_runtime.runs.base import (
    DEFAULT_MAX_PER_TENANT,
    DEFAULT_TTL_S,
    RunFilter,
    RunRecordStore,
    lease_expired,
    matches,
)
from agent_runtime.runs.record import ACTIVE, TERMINAL, Run
from agent_runtime.settings import RedisSettings

__all__ = ["RedisRunRecordStore"]

_PAGE = 200


class RedisRunRecordStore(RunRecordStore):
    def __init__(
        self,
        url: str,
        settings: RedisSettings | None = None,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_per_tenant: int = DEFAULT_MAX_PER_TENANT,
        client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl_s=ttl_s, max_per_tenant=max_per_tenant)
        cfg = settings or RedisSettings()
        self._redis = client if client is not None else make_redis(url, cfg)
        self._owns_client = client is None
        self._base = f"{cfg.key_prefix}:{{runs}}"
        self._pending = f"{self._base}:pending"
        self._leases = f"{self._base}:leases"
        self._clock = clock

    def _rec(self, run_id: str) -> str:
        return f"{self._base}:rec:{run_id}"

    def _tenant(self, tenant: str) -> str:
        return f"{self._base}:t:{tenant}"

    def _session(self, tenant: str, session_id: str) -> str:
        return f"{self._base}:a:{tenant}:{session_id}"

    def _queue_write(self, pipe: Any, run: Run) -> None:
        """The commands that store ``run`` and keep the pending index in step (inside a MULTI)."""
        if run.status in TERMINAL:
            pipe.set(self._rec(run.run_id), run.to_json(), px=max(1, int(self.ttl_s * 1000)))
        else:
            pipe.set(self._rec(run.run_id), run.to_json())
        if run.status == "pending":
            pipe.zadd(self._pending, {run.run_id: run.created_at})
        else:
            pipe.zrem(self._pending, run.run_id)
        if run.status == "running" and run.lease_until is not None:
            pipe.zadd(self._leases, {run.run_id: run.lease_until})
        else:
            pipe.zrem(self._leases, run.run_id)
        if run.session_id is not None:
            if run.status in ACTIVE:
                pipe.sadd(self._session(run.tenant, run.session_id), run.run_id)
            else:
                pipe.srem(self._session(run.tenant, run.session_id), run.run_id)

    async def create(self, run: Run) -> None:
        index = self._tenant(run.tenant)
        async with redis_errors("run_records.create"):
            async with self._redis.pipeline(transaction=True) as pipe:
                self._queue_write(pipe, run)
                pipe.zadd(index, {run.run_id: run.created_at})
                pipe.zcard(index)
                *_, count = await pipe.execute()
            if count > self.max_per_tenant:
                await self._prune(index, count - self.max_per_tenant)

    async def _prune(self, index: str, excess: int) -> None:
        """Drop the oldest finished runs among the ``excess`` oldest of a tenant (active ones stay)."""
        oldest = await self._redis.zrange(index, 0, excess - 1)
        runs = await self._load(oldest)
        gone = [run_id for run_id, run in zip(oldest, runs, strict=True) if run is None or run.status in TERMINAL]
        if gone:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(*(self._rec(run_id) for run_id in gone))
                pipe.zrem(index, *gone)
                await pipe.execute()

    async def _load(self, run_ids: list[str]) -> list[Run | None]:
        if not run_ids:
            return []
        raws = await self._redis.mget([self._rec(run_id) for run_id in run_ids])
        return [None if raw is None else Run.from_json(raw) for raw in raws]

    async def get(self, run_id: str, *, tenant: str | None = None) -> Run | None:
        async with redis_errors("run_records.get"):
            raw = await self._redis.get(self._rec(run_id))
        run = None if raw is None else Run.from_json(raw)
        if run is None or (tenant is not None and run.tenant != tenant):
            return None
        return run

    async def find(self, query: RunFilter) -> list[Run]:
        index = self._tenant(query.tenant)
        found: list[Run] = []
        skip, start = query.offset, 0
        async with redis_errors("run_records.list"):
            while len(found) < query.limit:
                run_ids = await self._redis.zrevrange(index, start, start + _PAGE - 1)
                if not run_ids:
                    break
                runs = await self._load(run_ids)
                expired = [run_id for run_id, run in zip(run_ids, runs, strict=True) if run is None]
                if expired:
                    await self._redis.zrem(index, *expired)
                start += len(run_ids) - len(expired)
                for run in runs:
                    if run is None or not query.matches(run):
                        continue
                    if skip:
                        skip -= 1
                    elif len(found) < query.limit:
                        found.append(run)
        return found

    async def transition(
        self, run_id: str, expected: Collection[str], *, match: Mapping[str, Any] | None = None, **changes: Any
    ) -> Run | None:
        key = self._rec(run_id)
        async with redis_errors("run_records.transition"), self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        return None
                    run = Run.from_json(raw)
                    if not matches(run, expected, match):
                        return None
                    updated = Run.model_validate(run.model_dump() | changes)
                    pipe.multi()
                    self._queue_write(pipe, updated)
                    await pipe.execute()
                    return updated
                except WatchError:
                    continue

    async def active(self, tenant: str, session_id: str) -> list[Run]:
        key = self._session(tenant, session_id)
        async with redis_errors("run_records.active"):
            runs = await self._load(sorted(await self._redis.smembers(key)))
        return [run for run in runs if run is not None and run.status in ACTIVE]

    async def delete(self, run_id: str) -> bool:
        async with redis_errors("run_records.delete"):
            raw = await self._redis.get(self._rec(run_id))
            if raw is None:
                return False
            run = Run.from_json(raw)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._rec(run_id))
                pipe.zrem(self._tenant(run.tenant), run_id)
                if run.session_id is not None:
                    pipe.srem(self._session(run.tenant, run.session_id), run_id)
                pipe.zrem(self._pending, run_id)
                pipe.zrem(self._leases, run_id)
                await pipe.execute()
        return True

    async def pending(self, limit: int = 1000) -> list[Run]:
        async with redis_errors("run_records.pending"):
            run_ids = await self._redis.zrange(self._pending, 0, limit - 1)
            runs = await self._load(run_ids)
        return [run for run in runs if run is not None and run.status == "pending"]

    async def expired(self, now: float, limit: int = 100) -> list[Run]:
        async with redis_errors("run_records.expired"):
            run_ids = await self._redis.zrangebyscore(self._leases, "-inf", f"({now}", start=0, num=limit)
            runs = await self._load(run_ids)
            gone = [run_id for run_id, run in zip(run_ids, runs, strict=True) if run is None]
            if gone:
                await self._redis.zrem(self._leases, *gone)
        return [run for run in runs if run is not None and lease_expired(run, now)]

    async def ping(self) -> None:
        async with redis_errors("run_records.ping"):
            await self._redis.ping()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose(close_connection_pool=True)
