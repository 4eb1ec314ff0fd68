"""Redis specifics: script cache loss, a dead or restarted server, cancelled callers inside a batch."""

from __future__ import annotations

import asyncio

import pytest
import redis

from agent_runtime.errors import BackendError
from agent_runtime.limits.rate.base import Limit
from agent_runtime.limits.rate.redis import RedisRateLimiter
from agent_runtime.settings import RedisSettings

pytestmark = pytest.mark.redis
LIMIT = [Limit("{t}:k:rpm", 1000, 60.0)]


async def test_recovers_when_the_server_forgets_its_scripts(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url)
    assert (await limiter.acquire(LIMIT)).allowed
    client = redis.Redis.from_url(redis_url)
    client.script_flush()
    client.close()
    decisions = await asyncio.gather(*(limiter.acquire(LIMIT) for _ in range(20)))
    assert all(d.allowed for d in decisions)
    assert 1000 - 21 <= (await limiter.peek(LIMIT)).remaining < 1000  # it refills while we run
    await limiter.aclose()


async def test_dead_server_fails_every_caller_fast_then_recovers(fault_redis) -> None:  # type: ignore[no-untyped-def]
    limiter = RedisRateLimiter(fault_redis.url, RedisSettings(connect_timeout=0.5, socket_timeout=0.5))
    assert all(d.allowed for d in await asyncio.gather(*(limiter.acquire(LIMIT) for _ in range(10))))
    fault_redis.stop()
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(limiter.acquire(LIMIT) for _ in range(10)), return_exceptions=True), timeout=10
    )
    assert all(isinstance(o, BackendError) for o in outcomes), outcomes
    fault_redis.start()
    assert (await limiter.acquire(LIMIT)).allowed
    await limiter.aclose()


async def test_cancelled_callers_do_not_disturb_the_others(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url)
    limit = [Limit("{t}:cancel:rpm", 50, 60.0)]
    tasks = [asyncio.create_task(limiter.acquire(limit)) for _ in range(100)]
    await asyncio.sleep(0)
    for task in tasks[1::2]:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    kept = [r for r in results if not isinstance(r, BaseException)]
    assert len(kept) >= 50
    # cancelled callers may or may not have had their decision made; the limit itself is never exceeded
    assert sum(d.allowed for d in kept) <= 50
    await asyncio.sleep(0.05)
    follow_up = await asyncio.gather(*(limiter.acquire(limit) for _ in range(60)))
    assert sum(d.allowed for d in kept) + sum(d.allowed for d in follow_up) <= 50 + 1
    assert not follow_up[-1].allowed
    await limiter.aclose()


async def test_every_decision_is_one_script_call(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.config_resetstat()
    limiter = RedisRateLimiter(redis_url)
    await asyncio.gather(*(limiter.acquire(LIMIT) for _ in range(300)))
    await limiter.aclose()
    stats = client.info("commandstats")
    client.close()
    evalsha = stats["cmdstat_evalsha"]
    assert evalsha["calls"] - evalsha.get("failed_calls", 0) == 300


async def test_quota_ledger_fails_closed_while_redis_is_down_and_recovers(fault_redis) -> None:  # type: ignore[no-untyped-def]
    from agent_runtime.errors import QuotaExceededError
    from agent_runtime.limits.quota.base import Quota, QuotaLimits
    from agent_runtime.limits.quota.redis import RedisQuotaLedger

    ledger = RedisQuotaLedger(fault_redis.url, RedisSettings(connect_timeout=0.5, socket_timeout=0.5))
    quota = [Quota("{t}:k", QuotaLimits(daily_tokens=1000))]
    res = await ledger.reserve("before", quota, tokens=400, cost_usd=0.0, ttl_s=60)
    await ledger.settle(res, tokens=400, cost_usd=0.0)
    fault_redis.stop()
    with pytest.raises(BackendError):
        await asyncio.wait_for(ledger.reserve("during", quota, tokens=1, cost_usd=0.0, ttl_s=60), timeout=10)
    fault_redis.start()  # appendonly: the settled spend survived the restart
    with pytest.raises(QuotaExceededError):
        await ledger.reserve("after", quota, tokens=601, cost_usd=0.0, ttl_s=60)
    await ledger.reserve("after", quota, tokens=600, cost_usd=0.0, ttl_s=60)
    await ledger.aclose()
