"""Rate limiter and quota ledger fixtures, parametrized over every backend (real redis-server for Redis,
the test session's PostgreSQL database); ledgers are built by the registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.limits.quota.base import QuotaLedger
from agent_runtime.limits.rate.base import RateLimiter
from agent_runtime.limits.rate.failover import FailOpenRateLimiter
from agent_runtime.limits.rate.memory import MemoryRateLimiter
from agent_runtime.limits.rate.redis import RedisRateLimiter
from tests.backends import STATE_BACKENDS, build_store

RATE_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("failover", marks=pytest.mark.redis, id="failover"),
]
QUOTA_BACKENDS = STATE_BACKENDS


@pytest.fixture(params=RATE_BACKENDS)
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    lim: RateLimiter
    if request.param == "memory":
        lim = MemoryRateLimiter()
    else:
        lim = RedisRateLimiter(request.getfixturevalue("redis_url"))
        lim = FailOpenRateLimiter(lim) if request.param == "failover" else lim
    yield lim
    await lim.aclose()


@pytest.fixture(params=QUOTA_BACKENDS)
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QuotaLedger]:
    led: QuotaLedger = build_store("quotas", request.param, request, tmp_path)
    yield led
    await led.aclose()
