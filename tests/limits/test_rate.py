"""GCRA contract on every rate limiter backend: admission, retry-after, peek, token debt, atomic multi-limit."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agent_runtime.errors import ValidationError
from agent_runtime.limits.rate.base import Limit, RateLimiter, gcra
from agent_runtime.limits.rate.memory import MemoryRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_admits_the_limit_then_refuses_with_retry_after(limiter: RateLimiter) -> None:
    limit = [Limit("{t}:k:rpm", 10, 60.0)]
    decisions = [await limiter.acquire(limit) for _ in range(12)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 2
    assert decisions[0].remaining == 9 and decisions[9].remaining == 0
    refused = decisions[10]
    assert 5.0 < refused.retry_after <= 6.0  # one emission interval is 60/10 s
    assert refused.blocked_by == 0


@pytest.mark.parametrize("size", [1, 7, 13])
async def test_bursts_with_fractional_intervals_fit_exactly(limiter: RateLimiter, size: int) -> None:
    """60 s / 7 is no whole number of microseconds: rounding must not cost the burst a unit."""
    limit = [Limit(f"{{t}}:k:burst{size}", size, 60.0)]
    decisions = [await limiter.acquire(limit) for _ in range(size + 1)]
    assert [d.allowed for d in decisions] == [True] * size + [False]


async def test_concurrent_attempts_admit_exactly_the_limit(limiter: RateLimiter) -> None:
    limit = [Limit("{t}:burst:rpm", 100, 60.0)]
    decisions = await asyncio.gather(*(limiter.acquire(limit) for _ in range(400)))
    assert sum(d.allowed for d in decisions) == 100


async def test_peek_charges_nothing(limiter: RateLimiter) -> None:
    limit = [Limit("{t}:tpm", 100, 60.0)]
    for _ in range(5):
        assert (await limiter.peek(limit)).allowed
    assert (await limiter.acquire(limit, cost=100)).allowed
    peeked = await limiter.peek(limit)
    assert not peeked.allowed and peeked.retry_after > 0


async def test_charge_goes_into_debt_and_blocks_until_repaid(limiter: RateLimiter) -> None:
    limit = [Limit("{t}:tpm", 1000, 60.0)]
    charged = await limiter.charge(limit, 3000)  # a run used three minutes' worth of tokens
    assert charged.allowed and charged.remaining == 0
    refused = await limiter.peek(limit)
    assert not refused.allowed
    assert 119.0 < refused.retry_after <= 120.1  # 2000 tokens of debt plus one token, at 1000/min
    assert not (await limiter.acquire(limit, 1)).allowed


async def test_multi_limit_is_all_or_nothing(limiter: RateLimiter) -> None:
    key_a, key_b, tenant = Limit("{t}:a:rpm", 5), Limit("{t}:b:rpm", 5), Limit("{t}:tenant:rpm", 6)
    assert all([(await limiter.acquire([key_a, tenant])).allowed for _ in range(5)])
    refused = await limiter.acquire([key_a, tenant])
    assert not refused.allowed and refused.blocked_by == 0
    assert (await limiter.acquire([key_b, tenant])).allowed  # tenant's 6th
    refused = await limiter.acquire([key_b, tenant])
    assert not refused.allowed and refused.blocked_by == 1
    # the refused call charged nothing on key_b: after a tenant reset it still has 4 left
    await limiter.reset([tenant.key])
    assert sum([(await limiter.acquire([key_b, tenant])).allowed for _ in range(6)]) == 4


async def test_cost_above_the_limit_is_never_admitted(limiter: RateLimiter) -> None:
    assert not (await limiter.acquire([Limit("{t}:x", 10)], cost=11)).allowed
    assert (await limiter.acquire([Limit("{t}:x", 10)], cost=10)).allowed


async def test_empty_limits_and_bad_arguments(limiter: RateLimiter) -> None:
    assert (await limiter.acquire([])).allowed
    with pytest.raises(ValidationError):
        await limiter.acquire([Limit("{t}:x", 10)], cost=-1)
    with pytest.raises(ValidationError):
        Limit("{t}:x", 0)


async def test_limits_refill_at_the_emission_rate() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    limit = [Limit("k", 60, 60.0)]  # one per second, burst 60
    assert sum([(await limiter.acquire(limit)).allowed for _ in range(61)]) == 60
    clock.now += 0.5
    assert not (await limiter.acquire(limit)).allowed
    clock.now += 0.5
    assert (await limiter.acquire(limit)).allowed
    assert not (await limiter.acquire(limit)).allowed
    clock.now += 60
    assert sum([(await limiter.acquire(limit)).allowed for _ in range(100)]) == 60


def test_memory_limiter_is_exact_across_threads() -> None:
    limiter = MemoryRateLimiter()
    limit = [Limit("threads", 100, 60.0)]
    admitted: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        loop = asyncio.new_event_loop()
        try:
            results = [loop.run_until_complete(limiter.acquire(limit)).allowed for _ in range(100)]
        finally:
            loop.close()
        with lock:
            admitted.extend(results)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 400 and sum(admitted) == 100


def test_python_reference_matches_its_contract() -> None:
    lim = [Limit("k", 2, 10.0)]
    d, tats = gcra([None], lim, 1, "acquire", 0.0)
    assert d.allowed and tats == [5.0]
    d, tats = gcra([5.0], lim, 1, "acquire", 0.0)
    assert d.allowed and tats == [10.0]
    d, tats = gcra([10.0], lim, 1, "acquire", 0.0)
    assert not d.allowed and tats is None and d.retry_after == 5.0
    d, tats = gcra([10.0], lim, 0, "peek", 0.0)
    assert not d.allowed and tats is None


@pytest.mark.parametrize("limit", [1, 3, 7, 13, 1000])
@pytest.mark.parametrize("now", [1000.84, 1003.8000000000001, 123456.789, 98765432.1])
def test_a_full_burst_fits_whatever_the_clock_reads(limit: int, now: float) -> None:
    """Float rounding (``now + 60 - 60 > now`` at the first two readings) once refused the first
    request of a 1-per-minute limit; the whole burst must fit, and not one unit more."""
    lim, tats = Limit("k", limit, 60.0), [None]
    for _ in range(limit):
        decision, stored = gcra(tats, [lim], 1, "acquire", now)
        assert decision.allowed and stored is not None
        tats = list(stored)
    assert not gcra(tats, [lim], 1, "acquire", now)[0].allowed


async def test_reserve_holds_the_bound_and_settle_gives_back_the_unused(limiter: RateLimiter) -> None:
    limit = [Limit("{t}:hold:tpm", 1000, 60.0)]
    first = await limiter.reserve(limit, 600)
    assert first.decision.allowed and first.tokens == 600 and first.decision.remaining == 400
    refused = await limiter.reserve(limit, 600)  # the hold counts before the run has used anything
    assert not refused.decision.allowed and refused.tokens == 0
    assert 11.9 < refused.decision.retry_after <= 12.1  # 200 tokens short, at 1000/min
    settled = await limiter.settle(first, 100)
    assert settled.allowed and 899 <= settled.remaining <= 900
    assert (await limiter.reserve(limit, 600)).decision.allowed


async def test_settle_charges_an_overrun_and_a_refund_never_overfills(limiter: RateLimiter) -> None:
    limit = [Limit("{t}:over:tpm", 1000, 60.0)]
    hold = await limiter.reserve(limit, 100)
    assert (await limiter.settle(hold, 1100)).remaining == 0  # 100 tokens of debt
    assert not (await limiter.reserve(limit, 1)).decision.allowed
    other = [Limit("{t}:full:tpm", 1000, 60.0)]
    hold = await limiter.reserve(other, 10)
    await limiter.settle(hold, 0)
    await limiter.settle(hold, 0)  # a second refund finds the limit full: it stays at its burst
    assert (await limiter.reserve(other, 1000)).decision.allowed
    assert not (await limiter.reserve(other, 1)).decision.allowed


def test_python_reference_refund_is_clamped_at_now() -> None:
    lim = [Limit("k", 10, 10.0)]
    d, tats = gcra([5.0], lim, 3, "refund", 0.0)
    assert d.allowed and tats == [2.0]
    d, tats = gcra([2.0], lim, 5, "refund", 0.0)
    assert d.allowed and tats == [0.0] and d.remaining == 10
