"""CostTrackingMiddleware: reserve before, settle after (completed, failed, cancelled, each attempt), hooks."""

from __future__ import annotations

import asyncio

import pytest

from agent_runtime.errors import ProviderError, QuotaExceededError, RunCancelledError
from agent_runtime.limits.quota.base import Quota, QuotaLedger, QuotaLimits
from agent_runtime.orchestration.middleware.cost import (
    STATE_KEY,
    CostEstimate,
    CostTrackingMiddleware,
    upper_bound_estimate,
)
from agent_runtime.types import AgentContext, AgentResult, Principal
from tests.orchestration.middleware._mw_helpers import FakeRun, ctx

ME = Principal(tenant="acme", user="alice", key_id="k1", daily_tokens=1000, monthly_usd=0.10)
MY_QUOTA = Quota("{acme}:key:k1", QuotaLimits(daily_tokens=1000, monthly_usd=0.10))


def bound(context: AgentContext) -> CostEstimate:
    return CostEstimate(tokens=300, cost_usd=0.03)


async def status(ledger: QuotaLedger, quota: Quota = MY_QUOTA) -> list[tuple[int, int]]:
    return [(s.spent, s.reserved) for s in await ledger.status([quota])]


async def test_reserves_the_bound_during_the_run_and_settles_to_real_usage(ledger: QuotaLedger) -> None:
    seen: list[list[tuple[int, int]]] = []

    async def inner(context: AgentContext) -> AgentResult:
        assert context.state[STATE_KEY].tokens == 300
        seen.append(await status(ledger))
        return await FakeRun(tokens=(40, 60), cost_usd=0.01)(context)

    result = await CostTrackingMiddleware(ledger, bound).process(ctx(principal=ME), inner)
    assert result.usage.total_tokens == 100
    assert seen == [[(0, 300), (0, 30_000)]]
    assert await status(ledger) == [(100, 0), (10_000, 0)]


async def test_run_that_does_not_fit_is_refused_before_it_starts(ledger: QuotaLedger) -> None:
    mw = CostTrackingMiddleware(ledger, bound)
    for _ in range(3):
        await mw.process(ctx(principal=ME), FakeRun(tokens=(100, 150), cost_usd=0.02))  # 250 tokens each
    inner = FakeRun()
    with pytest.raises(QuotaExceededError) as info:
        await mw.process(ctx(principal=ME), inner)  # 750 spent + 300 bound > 1000
    assert inner.calls == [] and info.value.retry_after is not None and info.value.retry_after > 1
    assert await status(ledger) == [(750, 0), (60_000, 0)]


async def test_failed_run_settles_its_partial_usage(ledger: QuotaLedger) -> None:
    mw = CostTrackingMiddleware(ledger, bound)
    error = ProviderError("boom", details={"usage": {"input_tokens": 50, "total_tokens": 80, "cost_usd": 0.005}})
    with pytest.raises(ProviderError):
        await mw.process(ctx(principal=ME), FakeRun(error=error))
    assert await status(ledger) == [(80, 0), (5_000, 0)]
    with pytest.raises(ProviderError):  # no usage attached: the reservation is simply released
        await mw.process(ctx(principal=ME), FakeRun(error=ProviderError("early")))
    assert await status(ledger) == [(80, 0), (5_000, 0)]


async def test_abandoned_stream_is_settled(ledger: QuotaLedger) -> None:
    result = await CostTrackingMiddleware(ledger, bound).process(
        ctx(principal=ME, streaming=True), FakeRun(tokens=(30, 2), cost_usd=0.001, status="cancelled")
    )
    assert result.status == "cancelled"
    assert await status(ledger) == [(32, 0), (1_000, 0)]


async def test_cancelled_task_still_releases_its_reservation(ledger: QuotaLedger) -> None:
    started = asyncio.Event()

    async def slow(context: AgentContext) -> AgentResult:
        started.set()
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    task = asyncio.create_task(CostTrackingMiddleware(ledger, bound).process(ctx(principal=ME), slow))
    await started.wait()
    assert await status(ledger) == [(0, 300), (0, 30_000)]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)  # the shielded settle finishes
    assert await status(ledger) == [(0, 0), (0, 0)]


async def test_each_retry_attempt_is_accounted(ledger: QuotaLedger) -> None:
    recorded: list[tuple[int, str, int]] = []
    mw = CostTrackingMiddleware(
        ledger, bound, lambda c, r: recorded.append((c.attempt, r.status, r.usage.total_tokens))
    )
    context = ctx(principal=ME)
    transient = ProviderError("429", retriable=True, details={"usage": {"total_tokens": 20, "cost_usd": 0.002}})
    with pytest.raises(ProviderError):
        await mw.process(context, FakeRun(error=transient))
    retry = context.model_copy(update={"attempt": 2})
    await mw.process(retry, FakeRun(tokens=(10, 20), cost_usd=0.003))
    assert recorded == [(1, "failed", 20), (2, "completed", 30)]
    assert await status(ledger) == [(50, 0), (5_000, 0)]


async def test_usage_recorder_async_failures_and_cancel_status(ledger: QuotaLedger) -> None:
    calls: list[AgentResult] = []

    async def record(context: AgentContext, result: AgentResult) -> None:
        calls.append(result)

    mw = CostTrackingMiddleware(ledger, bound, record)
    await mw.process(ctx(principal=ME), FakeRun())
    with pytest.raises(RunCancelledError):
        await mw.process(ctx(principal=ME), FakeRun(error=RunCancelledError("client went away")))
    assert [c.status for c in calls] == ["completed", "cancelled"]
    assert calls[1].error == {"code": "cancelled", "message": "client went away"}

    def broken(context: AgentContext, result: AgentResult) -> None:
        raise RuntimeError("monitoring is down")

    result = await CostTrackingMiddleware(ledger, bound, broken).process(ctx(principal=ME), FakeRun())
    assert result.status == "completed"  # a broken hook never fails a finished run


async def test_tenant_quotas_and_pass_through(ledger: QuotaLedger) -> None:
    mw = CostTrackingMiddleware(ledger, bound, tenant_quotas={"*": QuotaLimits(daily_tokens=500)})
    plain = Principal(tenant="beta", user="bob")
    await mw.process(ctx(principal=plain), FakeRun(tokens=(100, 150)))
    with pytest.raises(QuotaExceededError):
        await mw.process(ctx(principal=plain), FakeRun())  # 250 + 300 > 500
    tenant_quota = Quota("{beta}:tenant", QuotaLimits(daily_tokens=500))
    assert await status(ledger, tenant_quota) == [(250, 0)]
    inner = FakeRun()
    await CostTrackingMiddleware(ledger, bound).process(ctx(), inner)  # no principal, no quotas
    await CostTrackingMiddleware(ledger, bound).process(ctx(principal=Principal(tenant="t", user="u")), inner)
    assert len(inner.calls) == 2


def test_upper_bound_estimate() -> None:
    est = upper_bound_estimate("héllo", max_output_tokens=100, usd_per_input_token=1e-6, usd_per_output_token=2e-6)
    assert est.tokens == 6 + 64 + 100
    assert est.cost_usd == pytest.approx(70e-6 + 200e-6)
