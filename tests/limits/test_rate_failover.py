"""The fail-open limiter's token holds: settled where they were taken, whichever backend is up by then."""

from __future__ import annotations

import pytest

from agent_runtime.limits.rate.base import Limit
from agent_runtime.limits.rate.failover import FailOpenRateLimiter
from agent_runtime.limits.rate.memory import MemoryRateLimiter
from agent_runtime.limits.rate.redis import RedisRateLimiter
from agent_runtime.settings import RedisSettings
from tests.conftest import RedisServer

pytestmark = pytest.mark.redis
LIMIT = [Limit("{t}:k:tpm", 1000, 60.0)]


def fail_open(server: RedisServer) -> tuple[FailOpenRateLimiter, RedisRateLimiter, MemoryRateLimiter]:
    shared = RedisRateLimiter(server.url, RedisSettings(connect_timeout=0.5, socket_timeout=0.5))
    local = MemoryRateLimiter()
    return FailOpenRateLimiter(shared, local), shared, local


async def test_a_hold_taken_locally_is_settled_locally(fault_redis: RedisServer) -> None:
    limiter, shared, local = fail_open(fault_redis)
    fault_redis.stop()
    hold = await limiter.reserve(LIMIT, 800)
    assert hold.local and hold.decision.allowed and limiter.fallback_decisions == 1
    fault_redis.start()
    await limiter.settle(hold, 100)  # Redis is back, but never saw the hold: nothing given back there
    assert (await local.peek(LIMIT)).remaining >= 899
    assert (await shared.reserve(LIMIT, 1000)).decision.allowed
    await limiter.aclose()


async def test_a_shared_hold_whose_settle_fails_charges_the_overrun_locally(fault_redis: RedisServer) -> None:
    limiter, shared, local = fail_open(fault_redis)
    hold = await limiter.reserve(LIMIT, 500)
    assert not hold.local
    fault_redis.stop()
    await limiter.settle(hold, 700)
    assert limiter.fallback_decisions == 1
    assert 800 <= (await local.peek(LIMIT)).remaining < 820  # the 200-token overrun, charged locally
    fault_redis.start()
    assert not (await shared.reserve(LIMIT, 600)).decision.allowed  # the shared hold was kept, not refunded
    await limiter.aclose()
