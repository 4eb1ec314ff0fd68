"""Quota ledger contract on every backend: reserve-then-settle, refusal with retry-after, expiry, atomicity."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from agent_runtime.errors import QuotaExceededError, ValidationError
from agent_runtime.limits.quota.base import Quota, QuotaLedger, QuotaLimits, usd_to_micros, window_end
from agent_runtime.limits.quota.memory import MemoryQuotaLedger

TOKENS = Quota("{acme}:key:k1", QuotaLimits(daily_tokens=1000))
USD = Quota("{acme}:tenant", QuotaLimits(monthly_usd=1.0))


async def spent_reserved(ledger: QuotaLedger, quota: Quota) -> tuple[int, int]:
    (status,) = await ledger.status([quota])
    return status.spent, status.reserved


async def test_reserve_then_settle_to_real_usage(ledger: QuotaLedger) -> None:
    res = await ledger.reserve("run1", [TOKENS], tokens=600, cost_usd=0.0, ttl_s=60)
    assert await spent_reserved(ledger, TOKENS) == (0, 600)
    await ledger.settle(res, tokens=250, cost_usd=0.0)
    assert await spent_reserved(ledger, TOKENS) == (250, 0)
    (status,) = await ledger.status([TOKENS])
    assert status.remaining == 750 and status.limit == 1000


async def test_reservation_that_does_not_fit_is_refused(ledger: QuotaLedger) -> None:
    first = await ledger.reserve("run1", [TOKENS], tokens=700, cost_usd=0.0, ttl_s=60)
    with pytest.raises(QuotaExceededError) as info:
        await ledger.reserve("run2", [TOKENS], tokens=400, cost_usd=0.0, ttl_s=60)
    assert info.value.retry_after == 1.0  # only the in-flight run blocks: it settles soon
    await ledger.settle(first, tokens=700, cost_usd=0.0)
    with pytest.raises(QuotaExceededError) as info:
        await ledger.reserve("run3", [TOKENS], tokens=400, cost_usd=0.0, ttl_s=60)
    assert info.value.retry_after is not None and info.value.retry_after > 1.0  # spent: wait for tomorrow
    assert info.value.retry_after <= 86_400 and info.value.details == {"quota": "daily_tokens"}
    assert await spent_reserved(ledger, TOKENS) == (700, 0)
    await ledger.reserve("run4", [TOKENS], tokens=300, cost_usd=0.0, ttl_s=60)  # exactly fills it


async def test_a_run_bound_above_the_whole_quota_says_so(ledger: QuotaLedger) -> None:
    with pytest.raises(QuotaExceededError, match=r"up to 1001 tokens but the whole daily token quota is 1000") as info:
        await ledger.reserve("run1", [TOKENS], tokens=1001, cost_usd=0.0, ttl_s=60)
    assert info.value.retry_after is None  # no window will ever hold it: no "come back tomorrow"
    assert await spent_reserved(ledger, TOKENS) == (0, 0)


async def test_usd_quota_in_micro_dollars(ledger: QuotaLedger) -> None:
    runs = []
    for i in range(10):
        runs.append(await ledger.reserve(f"r{i}", [USD], tokens=10, cost_usd=0.1, ttl_s=60))
    with pytest.raises(QuotaExceededError, match="monthly spend"):
        await ledger.reserve("r10", [USD], tokens=10, cost_usd=0.000001, ttl_s=60)
    for res in runs:
        await ledger.settle(res, tokens=10, cost_usd=0.03)
    assert await spent_reserved(ledger, USD) == (300_000, 0)


async def test_all_buckets_or_none(ledger: QuotaLedger) -> None:
    both = [TOKENS, USD]
    await ledger.reserve("big", [USD], tokens=0, cost_usd=0.95, ttl_s=60)
    with pytest.raises(QuotaExceededError):
        await ledger.reserve("run", both, tokens=100, cost_usd=0.10, ttl_s=60)
    assert await spent_reserved(ledger, TOKENS) == (0, 0)  # the token bucket was not touched
    res = await ledger.reserve("run", both, tokens=100, cost_usd=0.05, ttl_s=60)
    assert await spent_reserved(ledger, TOKENS) == (0, 100)
    await ledger.settle(res, tokens=80, cost_usd=0.04)
    assert await spent_reserved(ledger, TOKENS) == (80, 0)
    assert await spent_reserved(ledger, USD) == (40_000, 950_000)


async def test_release_and_double_settle(ledger: QuotaLedger) -> None:
    res = await ledger.reserve("run", [TOKENS], tokens=500, cost_usd=0.0, ttl_s=60)
    await ledger.release(res)
    assert await spent_reserved(ledger, TOKENS) == (0, 0)
    res = await ledger.reserve("run2", [TOKENS], tokens=500, cost_usd=0.0, ttl_s=60)
    await ledger.settle(res, tokens=100, cost_usd=0.0)
    await ledger.settle(res, tokens=0, cost_usd=0.0)  # a second settle adds nothing more
    assert await spent_reserved(ledger, TOKENS) == (100, 0)


@pytest.mark.parametrize("reaper_first", [True, False], ids=["reaper-first", "worker-first"])
async def test_adjust_corrects_a_charge_made_by_a_reaper_in_either_order(
    ledger: QuotaLedger, reaper_first: bool
) -> None:
    """A reaper charged a stalled run's bound; the worker, finishing it, adds real usage minus that bound."""
    res = await ledger.reserve("stalled", [TOKENS, USD], tokens=600, cost_usd=0.3, ttl_s=60)
    steps = [
        lambda: ledger.settle(res, tokens=600, cost_usd=0.3),  # the reaper's charge
        lambda: ledger.adjust(res, tokens=250 - 600, usd_micros=100_000 - 300_000),  # the worker's correction
    ]
    for step in steps if reaper_first else steps[::-1]:
        await step()
    assert await spent_reserved(ledger, TOKENS) == (250, 0)
    assert await spent_reserved(ledger, USD) == (100_000, 0)
    await ledger.adjust(res, tokens=50, usd_micros=0)  # more than the bound: positive
    assert await spent_reserved(ledger, TOKENS) == (300, 0)


async def test_re_reserving_an_id_replaces_it(ledger: QuotaLedger) -> None:
    await ledger.reserve("run", [TOKENS], tokens=800, cost_usd=0.0, ttl_s=60)
    await ledger.reserve("run", [TOKENS], tokens=900, cost_usd=0.0, ttl_s=60)
    assert await spent_reserved(ledger, TOKENS) == (0, 900)


async def test_expired_reservations_stop_counting(ledger: QuotaLedger) -> None:
    res = await ledger.reserve("dies", [TOKENS], tokens=900, cost_usd=0.0, ttl_s=0.3)
    with pytest.raises(QuotaExceededError):
        await ledger.reserve("blocked", [TOKENS], tokens=200, cost_usd=0.0, ttl_s=60)
    await asyncio.sleep(0.4)
    assert await spent_reserved(ledger, TOKENS) == (0, 0)
    await ledger.reserve("fits", [TOKENS], tokens=200, cost_usd=0.0, ttl_s=60)
    await ledger.settle(res, tokens=50, cost_usd=0.0)  # a late settle still records what was spent
    assert await spent_reserved(ledger, TOKENS) == (50, 200)


async def test_concurrent_reservations_never_overcommit(ledger: QuotaLedger) -> None:
    async def run(i: int) -> bool:
        try:
            res = await ledger.reserve(f"c{i}", [TOKENS], tokens=100, cost_usd=0.0, ttl_s=60)
        except QuotaExceededError:
            return False
        await asyncio.sleep(0.01)
        await ledger.settle(res, tokens=100, cost_usd=0.0)
        return True

    admitted = await asyncio.gather(*(run(i) for i in range(50)))
    assert sum(admitted) == 10
    assert await spent_reserved(ledger, TOKENS) == (1000, 0)


async def test_no_limits_means_no_buckets(ledger: QuotaLedger) -> None:
    res = await ledger.reserve("run", [Quota("{a}:x", QuotaLimits())], tokens=10**9, cost_usd=1e6, ttl_s=60)
    assert res.buckets == ()
    await ledger.settle(res, tokens=1, cost_usd=1.0)
    assert await ledger.status([Quota("{a}:x", QuotaLimits())]) == []


async def test_bad_arguments(ledger: QuotaLedger) -> None:
    for kwargs in ({"tokens": -1, "cost_usd": 0.0, "ttl_s": 1}, {"tokens": 1, "cost_usd": 0.0, "ttl_s": 0}):
        with pytest.raises(ValidationError):
            await ledger.reserve("run", [TOKENS], **kwargs)  # type: ignore[arg-type]


async def test_windows_roll_over_at_utc_midnight_and_month_end() -> None:
    now = [datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC).timestamp()]
    ledger = MemoryQuotaLedger(clock=lambda: now[0])
    quota = Quota("{a}:k", QuotaLimits(daily_tokens=100, monthly_usd=0.5))
    res = await ledger.reserve("r", [quota], tokens=100, cost_usd=0.5, ttl_s=60)
    await ledger.settle(res, tokens=100, cost_usd=0.5)
    with pytest.raises(QuotaExceededError) as info:
        await ledger.reserve("r2", [quota], tokens=1, cost_usd=0.0, ttl_s=60)
    assert info.value.retry_after == 30.0
    now[0] += 31
    await ledger.reserve("r3", [quota], tokens=100, cost_usd=0.5, ttl_s=60)  # new day, new month


def test_window_end_and_micros() -> None:
    ts = datetime(2026, 2, 14, 12, 0, tzinfo=UTC).timestamp()
    assert window_end("daily_tokens", ts) == ("2026-02-14", datetime(2026, 2, 15, tzinfo=UTC).timestamp())
    assert window_end("monthly_usd", ts) == ("2026-02", datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    assert usd_to_micros(0.1 + 0.2) == 300_000


async def test_settle_and_adjust_with_an_op_id_apply_once(ledger: QuotaLedger) -> None:
    """A journal entry replayed after a crash between apply and mark must not count twice."""
    res = await ledger.reserve("run-op:1", [TOKENS, USD], tokens=600, cost_usd=0.5, ttl_s=60)
    for _ in range(3):
        await ledger.settle(res, tokens=250, cost_usd=0.2, op_id="run-op:1:settle")
    assert await spent_reserved(ledger, TOKENS) == (250, 0)
    assert await spent_reserved(ledger, USD) == (usd_to_micros(0.2), 0)
    for _ in range(2):
        await ledger.adjust(res, tokens=-50, usd_micros=-100_000, op_id="run-op:1:adjust")
    assert await spent_reserved(ledger, TOKENS) == (200, 0)
    assert await spent_reserved(ledger, USD) == (usd_to_micros(0.1), 0)
    await ledger.adjust(res, tokens=5, usd_micros=0)  # no op id: every call counts, as before
    await ledger.adjust(res, tokens=5, usd_micros=0)
    assert await spent_reserved(ledger, TOKENS) == (210, 0)
