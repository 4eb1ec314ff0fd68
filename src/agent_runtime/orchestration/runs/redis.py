"""Redis run registry, shared by every worker of a fleet.

Keys (``ar`` is the key prefix; one hash tag, so the claim script stays in one Cluster slot)::

    ar:{runs}:live        hash  key -> RunRecord JSON of running attempts
    ar:{runs}:hb          zset  key -> heartbeat (Unix time): what the reaper scans
    ar:{runs}:abandoned   hash  key -> RunRecord JSON of reaped attempts
    ar:{runs}:abandoned_at zset key -> when reaped, for pruning after the retention

A batch of starts and a batch of finishes are one MULTI each (one round trip), a heartbeat is one ``ZADD XX``
for all of a worker's long runs, and a claim is one Lua call, so two reapers never claim the same
run. The claim stamps the reaper's charge policy on the record (a field appended to its JSON: records
are compact pydantic JSON objects that never carry it while running).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent_runtime._redis import make_redis, redis_errors
from agent_runtime.orchestration.runs.base import ABANDONED_RETENTION_S, ChargePolicy, RunRecord, RunStore
from agent_runtime.settings import RedisSettings

__all__ = ["RedisRunStore"]

_CLAIM = """
local keys = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, k in ipairs(keys) do
  local rec = redis.call('HGET', KEYS[1], k)
  redis.call('ZREM', KEYS[2], k)
  redis.call('HDEL', KEYS[1], k)
  if rec then
    rec = string.sub(rec, 1, -2) .. ',"charge":"' .. ARGV[5] .. '"}'
    out[#out + 1] = rec
    redis.call('HSET', KEYS[3], k, rec)
    redis.call('ZADD', KEYS[4], ARGV[3], k)
  end
end
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[4], 'LIMIT', 0, 100)
for _, k in ipairs(old) do
  redis.call('HDEL', KEYS[3], k)
  redis.call('ZREM', KEYS[4], k)
end
return out
"""


class RedisRunStore(RunStore):
    def __init__(self, url: str, settings: RedisSettings | None = None, *, client: Any = None) -> None:
        cfg = settings or RedisSettings()
        self._redis = client if client is not None else make_redis(url, cfg)
        self._owns_client = client is None
        base = f"{cfg.key_prefix}:{{runs}}"
        self._live, self._hb = f"{base}:live", f"{base}:hb"
        self._abandoned, self._abandoned_at = f"{base}:abandoned", f"{base}:abandoned_at"
        self._claim = self._redis.register_script(_CLAIM)

    async def start_many(self, records: Sequence[RunRecord]) -> None:
        if records:
            async with redis_errors("runs.start"), self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._live, mapping={r.key: r.to_json() for r in records})
                pipe.zadd(self._hb, {r.key: r.heartbeat_at for r in records})
                await pipe.execute()

    async def finish_many(self, keys: Sequence[str]) -> dict[str, RunRecord]:
        if not keys:
            return {}
        async with redis_errors("runs.finish"), self._redis.pipeline(transaction=True) as pipe:
            for key in keys:  # one HDEL each: which keys were live tells which ones a reaper took
                pipe.hdel(self._live, key)
            pipe.zrem(self._hb, *keys)
            pipe.hmget(self._abandoned, list(keys))
            *deleted, _, abandoned = await pipe.execute()
        claimed = {}
        for key, was_live, raw in zip(keys, deleted, abandoned, strict=True):
            if not was_live and raw is not None:  # a live key may share its name with an old abandoned one
                record = RunRecord.from_json(raw)
                record.status = "abandoned"
                claimed[key] = record
        return claimed

    async def heartbeat(self, keys: Sequence[str], now: float) -> None:
        if keys:
            async with redis_errors("runs.heartbeat"):
                await self._redis.zadd(self._hb, dict.fromkeys(keys, now), xx=True)

    async def claim_stale(
        self, cutoff: float, now: float, limit: int = 100, *, charge: ChargePolicy = "reserved"
    ) -> list[RunRecord]:
        keys = [self._live, self._hb, self._abandoned, self._abandoned_at]
        args = [cutoff, limit, now, now - ABANDONED_RETENTION_S, charge]
        async with redis_errors("runs.claim"):
            raws = await self._claim(keys=keys, args=args)
        records = [RunRecord.from_json(raw) for raw in raws]
        for record in records:
            record.status = "abandoned"
        return records

    async def get(self, key: str) -> RunRecord | None:
        async with redis_errors("runs.get"):
            raw = await self._redis.hget(self._live, key)
            abandoned = raw is None
            if abandoned:
                raw = await self._redis.hget(self._abandoned, key)
        if raw is None:
            return None
        record = RunRecord.from_json(raw)
        if abandoned:
            record.status = "abandoned"
        return record

    async def ping(self) -> None:
        async with redis_errors("runs.ping"):
            await self._redis.ping()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose(close_connection_pool=True)  # make_redis hands us the pool
