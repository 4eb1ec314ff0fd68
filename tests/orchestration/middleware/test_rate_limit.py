"""RateLimitMiddleware on every limiter: requests/min per key, tenant and template; tokens/min held
before a run (its upper bound) and settled to the real count after."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from agent_runtime.errors import ProviderError, RateLimitError
from agent_runtime.limits.rate.base import RateLimiter
from agent_runtime.limits.rate.redis import RedisRateLimiter
from agent_runtime.orchestration.middleware.cost import CostEstimate
from agent_runtime.orchestration.middleware.rate_limit import RateLimitMiddleware, RateLimits
from agent_runtime.types import AgentContext, AgentResult, Principal
from tests.orchestration.middleware._mw_helpers import FakeRun, ctx


def principal(user: str = "alice", key_id: str | None = "k1", tenant: str = "acme", **limits: int) -> Principal:
    return Principal(tenant=tenant, user=user, key_id=key_id, scopes=frozenset({"*"}), **limits)


async def test_key_rpm_admits_then_refuses_with_retry_after(limiter: RateLimiter) -> None:
    mw = RateLimitMiddleware(limiter, default_rpm=100)
    me = principal(rpm=3)
    for _ in range(3):
        await mw.process(ctx(principal=me), FakeRun())
    inner = FakeRun()
    with pytest.raises(RateLimitError) as info:
        await mw.process(ctx(principal=me), inner)
    assert inner.calls == []
    assert info.value.retry_after is not None and 19 < info.value.retry_after <= 20
    assert info.value.details == {"scope": "key", "limit": "rpm"}
    await mw.process(ctx(principal=principal(key_id="k2", rpm=3)), FakeRun())  # other keys unaffected


async def test_default_rpm_applies_to_principals_without_limits(limiter: RateLimiter) -> None:
    mw = RateLimitMiddleware(limiter, default_rpm=2)
    for p in (principal(key_id=None), principal(key_id=None)):
        await mw.process(ctx(principal=p), FakeRun())
    with pytest.raises(RateLimitError):
        await mw.process(ctx(principal=principal(key_id=None)), FakeRun())
    await mw.process(ctx(), FakeRun())  # anonymous runs have their own bucket


async def test_tenant_limit_is_shared_by_its_keys(limiter: RateLimiter) -> None:
    mw = RateLimitMiddleware(limiter, per_tenant={"acme": RateLimits(rpm=3), "*": RateLimits(rpm=1)})
    for key in ("k1", "k2", "k3"):
        await mw.process(ctx(principal=principal(key_id=key)), FakeRun())
    with pytest.raises(RateLimitError) as info:
        await mw.process(ctx(principal=principal(key_id="k4")), FakeRun())
    assert info.value.details["scope"] == "tenant"
    await mw.process(ctx(principal=principal(tenant="other")), FakeRun())
    with pytest.raises(RateLimitError):  # "*" gives every other tenant its own limit of 1
        await mw.process(ctx(principal=principal(tenant="other", key_id="k9")), FakeRun())


async def test_per_template_limit(limiter: RateLimiter) -> None:
    mw = RateLimitMiddleware(limiter, per_template={"analyst": RateLimits(rpm=1)})
    await mw.process(ctx("analyst", principal=principal()), FakeRun())
    with pytest.raises(RateLimitError) as info:
        await mw.process(ctx("analyst", principal=principal()), FakeRun())
    assert info.value.details["scope"] == "template"
    await mw.process(ctx("writer", principal=principal()), FakeRun())
    await mw.process(ctx("analyst", principal=principal(key_id="k2")), FakeRun())


async def test_tokens_are_charged_after_and_checked_before(limiter: RateLimiter) -> None:
    mw = RateLimitMiddleware(limiter)
    me = principal(tpm=1000)
    await mw.process(ctx(principal=me), FakeRun(tokens=(400, 700)))  # 1100 tokens: into debt
    inner = FakeRun()
    with pytest.raises(RateLimitError) as info:
        await mw.process(ctx(principal=me), inner)
    assert inner.calls == [] and info.value.details == {"scope": "key", "limit": "tpm"}
    assert info.value.retry_after is not None and 6 < info.value.retry_after <= 6.1  # 101 tokens at 1000/min


async def test_tokens_of_failed_and_cancelled_runs_are_charged(limiter: RateLimiter) -> None:
    mw = RateLimitMiddleware(limiter)
    me = principal(tpm=1000)
    failing = FakeRun(error=ProviderError("boom", details={"usage": {"input_tokens": 600, "output_tokens": 450}}))
    with pytest.raises(ProviderError):
        await mw.process(ctx(principal=me), failing)
    with pytest.raises(RateLimitError):
        await mw.process(ctx(principal=me), FakeRun())
    other = principal(key_id="k2", tpm=1000)
    await mw.process(ctx(principal=other), FakeRun(tokens=(500, 600), status="cancelled"))
    with pytest.raises(RateLimitError):
        await mw.process(ctx(principal=other), FakeRun())
    without_usage = principal(key_id="k3", tpm=10)
    with pytest.raises(ProviderError):
        await mw.process(ctx(principal=without_usage), FakeRun(error=ProviderError("no usage attached")))
    await mw.process(ctx(principal=without_usage), FakeRun(tokens=(1, 1)))


async def test_no_limits_configured_is_a_pass_through(limiter: RateLimiter) -> None:
    mw = RateLimitMiddleware(limiter)
    for _ in range(50):
        await mw.process(ctx(principal=principal()), FakeRun())


class SlowRun(FakeRun):
    """A run that spans several loop turns (so runs overlap) and uses up to ``bound`` tokens."""

    def __init__(self, used: int) -> None:
        super().__init__(tokens=(used // 2, used - used // 2))

    async def __call__(self, context: AgentContext) -> AgentResult:
        for _ in range(5):
            await asyncio.sleep(0)
        return await super().__call__(context)


async def test_concurrent_runs_never_admit_more_tokens_than_the_limit_plus_one_bound(limiter: RateLimiter) -> None:
    """300 runs at concurrency 64 against --tpm 2000 (a peek-then-charge limiter admitted 6,511)."""
    tpm, bound = 2000, 300
    mw = RateLimitMiddleware(limiter, estimate=lambda context: CostEstimate(bound, 0.0))
    me, rng, gate = principal(tpm=tpm), random.Random(15), asyncio.Semaphore(64)
    admitted: list[int] = []

    async def one(used: int) -> None:
        async with gate:
            try:
                await mw.process(ctx(principal=me), SlowRun(used))
            except RateLimitError:
                return
            admitted.append(used)

    started = time.monotonic()
    await asyncio.gather(*(one(rng.randint(bound // 2, bound)) for _ in range(300)))
    refill = tpm * (time.monotonic() - started) / 60
    assert 0 < sum(admitted) <= tpm + bound + refill, (sum(admitted), refill)
    assert len(admitted) < 300
    # every hold was settled to its real count: what is left is exactly what the runs did not use
    left = (await limiter.peek(mw.limits_for(ctx(principal=me))[1])).remaining
    assert tpm - sum(admitted) - 1 <= left <= tpm - sum(admitted) + refill + 1


async def test_a_bound_above_the_limit_is_cut_to_it_and_unused_tokens_come_back(limiter: RateLimiter) -> None:
    mw = RateLimitMiddleware(limiter, estimate=lambda context: CostEstimate(5000, 0.0))
    me = principal(tpm=1000)
    await mw.process(ctx(principal=me), FakeRun(tokens=(30, 70)))  # held 1000, used 100: 900 come back
    with pytest.raises(RateLimitError) as info:  # the next needs all 1000 again: 100 tokens short
        await mw.process(ctx(principal=me), FakeRun())
    assert info.value.details == {"scope": "key", "limit": "tpm"}
    assert info.value.retry_after is not None and 5.9 < info.value.retry_after <= 6.1


@pytest.mark.redis
async def test_two_workers_on_one_redis_share_the_tokens_per_minute(redis_url: str) -> None:
    """A fleet: two limiters (two workers' connections), 300 runs at concurrency 64 split between them."""
    tpm, bound = 2000, 300
    workers = [RedisRateLimiter(redis_url), RedisRateLimiter(redis_url)]
    chains = [RateLimitMiddleware(w, estimate=lambda context: CostEstimate(bound, 0.0)) for w in workers]
    me, rng, gate = principal(tpm=tpm), random.Random(64), asyncio.Semaphore(64)
    admitted: list[int] = []

    async def one(i: int, used: int) -> None:
        async with gate:
            try:
                await chains[i % 2].process(ctx(principal=me), SlowRun(used))
            except RateLimitError:
                return
            admitted.append(used)

    started = time.monotonic()
    await asyncio.gather(*(one(i, rng.randint(bound // 2, bound)) for i in range(300)))
    refill = tpm * (time.monotonic() - started) / 60
    for worker in workers:
        await worker.aclose()
    assert 0 < sum(admitted) <= tpm + bound + refill, (sum(admitted), refill)
