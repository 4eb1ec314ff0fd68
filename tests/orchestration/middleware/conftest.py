"""Fixtures for the middleware tests: key service, and limiters and ledgers on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent_runtime.limits.quota.base import QuotaLedger
from agent_runtime.limits.quota.memory import MemoryQuotaLedger
from agent_runtime.limits.quota.redis import RedisQuotaLedger
from agent_runtime.limits.rate.base import RateLimiter
from agent_runtime.limits.rate.memory import MemoryRateLimiter
from agent_runtime.limits.rate.redis import RedisRateLimiter
from agent_runtime.security.keys import KeyService
from agent_runtime.security.memory import MemoryKeyStore

BACKENDS = [pytest.param("memory", id="memory"), pytest.param("redis", marks=pytest.mark.redis, id="redis")]


@pytest.fixture
def keys() -> KeyService:
    return KeyService(MemoryKeyStore())


@pytest.fixture(params=BACKENDS)
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    lim: RateLimiter
    lim = MemoryRateLimiter() if request.param == "memory" else RedisRateLimiter(request.getfixturevalue("redis_url"))
    yield lim
    await lim.aclose()


@pytest.fixture(params=BACKENDS)
async def ledger(request: pytest.FixtureRequest) -> AsyncIterator[QuotaLedger]:
    led: QuotaLedger
    led = MemoryQuotaLedger() if request.param == "memory" else RedisQuotaLedger(request.getfixturevalue("redis_url"))
    yield led
    await led.aclose()
