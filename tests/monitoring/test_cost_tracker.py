from __future__ import annotations

from datetime import date

import pytest

from agent_runtime.errors import ValidationError
from agent_runtime.monitoring.cost_tracker import ANONYMOUS_USER, DEFAULT_TENANT, CostTracker
from agent_runtime.monitoring.pricing import ModelPrice, PriceTable
from agent_runtime.monitoring.usage import MemoryUsageStore, UsageStore
from agent_runtime.types import Principal

TODAY = date(2026, 5, 17)
PRICES = PriceTable(
    {
        "offline": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60, cached_input_per_mtok=0.075),
        "gpt-4o": ModelPrice(input_per_mtok=2.50, output_per_mtok=10.00, cached_input_per_mtok=1.25),
    }
)
ALICE = Principal(tenant="acme", user="alice")


def expected_cost(price: ModelPrice, inp: int, out: int, cached: int = 0) -> float:
    cached_price = price.cached_input_per_mtok or price.input_per_mtok
    return ((inp - cached) * price.input_per_mtok + cached * cached_price + out * price.output_per_mtok) / 1e6


@pytest.fixture
def tracker(usage_store: UsageStore) -> CostTracker:
    return CostTracker(PRICES, usage_store, clock=lambda: TODAY)


@pytest.mark.parametrize(
    ("model", "inp", "out", "cached"),
    [("offline", 1234, 567, 0), ("gpt-4o", 1_000_000, 1, 250_000), ("gpt-4o-2024-08-06", 3, 4, 3)],
)
async def test_cost_is_tokens_times_price(tracker: CostTracker, make_result, model, inp, out, cached) -> None:
    result = make_result(model=model, input_tokens=inp, output_tokens=out, cached_tokens=cached)
    record = await tracker.record(result, ALICE)
    price = PRICES.price_for(model)
    assert price is not None
    assert record.cost_usd == pytest.approx(expected_cost(price, inp, out, cached), abs=1e-9)
    assert result.usage.cost_usd == record.cost_usd  # stamped on the result for logs and metrics
    assert await tracker.spend("acme") == pytest.approx(record.cost_usd, abs=1e-9)


async def test_streamed_abandoned_and_retried_runs_are_each_charged(tracker: CostTracker, make_result) -> None:
    price = PRICES.prices["offline"]
    streamed = make_result(template="writer", input_tokens=40, output_tokens=30, ttft_ms=5.0)
    abandoned = make_result(template="writer", status="cancelled", input_tokens=40, output_tokens=2)
    attempt1 = make_result(status="failed", input_tokens=100, output_tokens=0, error={"code": "timeout"})
    attempt2 = make_result(input_tokens=100, output_tokens=50)
    for result in (streamed, abandoned, attempt1, attempt2):
        await tracker.record(result, ALICE)
    rows = {r.key: r for r in await tracker.report(tenant="acme", by="template")}
    assert rows["writer"].runs == 2 and rows["writer"].output_tokens == 32
    assert rows["analyst"].runs == 2 and rows["analyst"].input_tokens == 200
    total = expected_cost(price, 80, 32) + expected_cost(price, 200, 50)
    assert await tracker.spend("acme", period="month") == pytest.approx(total, abs=1e-9)


async def test_attribution(tracker: CostTracker, make_result) -> None:
    await tracker.record(make_result(), ALICE)
    await tracker.record(make_result(), tenant="globex", user="bob", template="custom")
    await tracker.record(make_result())
    by_tenant = {r.key: r.runs for r in await tracker.report(by="tenant")}
    assert by_tenant == {"acme": 1, "globex": 1, DEFAULT_TENANT: 1}
    by_user = {r.key for r in await tracker.report(by="user")}
    assert by_user == {"alice", "bob", ANONYMOUS_USER}
    assert [r.key for r in await tracker.report(tenant="globex", by="template")] == ["custom"]
    assert [r.key for r in await tracker.report(by="day")] == [TODAY.isoformat()]
    assert await tracker.spend("acme", "bob") == 0.0


async def test_unknown_model_costs_zero_but_counts_tokens(make_result) -> None:
    tracker = CostTracker(PRICES, MemoryUsageStore(), clock=lambda: TODAY)
    record = await tracker.record(make_result(model="mystery-model", input_tokens=10, output_tokens=10), ALICE)
    assert record.cost_usd == 0.0 and record.input_tokens == 10


async def test_malformed_tenant_is_refused(tracker: CostTracker, make_result) -> None:
    with pytest.raises(ValidationError):
        await tracker.record(make_result(), tenant="acme:*:evil", user="alice")
    with pytest.raises(ValidationError):
        await tracker.report(tenant="acme\r\nFLUSHALL")
    await tracker.aclose()


async def test_build_cost_tracker_reads_price_file(tmp_path, make_result) -> None:
    from agent_runtime.monitoring.cost_tracker import build_cost_tracker
    from agent_runtime.settings import Settings

    price_file = tmp_path / "prices.json"
    price_file.write_text('{"offline": {"input_per_mtok": 0, "output_per_mtok": 0}}')
    tracker = build_cost_tracker(Settings(state_backend="memory", price_file=price_file))
    record = await tracker.record(make_result(), ALICE)
    assert record.cost_usd == 0.0 and record.input_tokens == 100
    await tracker.aclose()
