"""One contract, every ledger backend (memory, SQLite, real redis-server)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from agent_runtime.errors import ValidationError
from agent_runtime.monitoring.usage import UsageRecord, UsageStore

D1, D2, D3 = date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1)


def rec(tenant="acme", user="alice", template="analyst", model="offline", day=D1, inp=100, out=10, cached=0, cost=0.01):
    return UsageRecord(tenant, user, template, model, day, inp, out, cached, cost, 1)


async def seed(store: UsageStore) -> None:
    for record in (
        rec(),
        rec(),
        rec(model="gpt-4o", cost=0.5, cached=40),
        rec(user="bob", template="writer", day=D2, inp=50, out=5, cost=0.002),
        rec(user="bob", template="writer", model="openai:gpt-4o-mini", day=D3, inp=7, out=3, cost=0.001),
        rec(tenant="globex", user="carol", day=D2, inp=1000, out=100, cost=1.0),
    ):
        await store.add(record)


async def test_add_accumulates_one_cell(usage_store: UsageStore) -> None:
    await usage_store.add(rec())
    await usage_store.add(rec(inp=1, out=2, cached=3, cost=0.25))
    [cell] = await usage_store.records(tenant="acme")
    assert (cell.input_tokens, cell.output_tokens, cell.cached_tokens, cell.runs) == (101, 12, 3, 2)
    assert cell.cost_usd == pytest.approx(0.26)
    assert cell.day == D1 and cell.model == "offline"


async def test_report_by_each_dimension(usage_store: UsageStore) -> None:
    await seed(usage_store)
    by_model = {r.key: r for r in await usage_store.report(tenant="acme", by="model")}
    assert set(by_model) == {"offline", "gpt-4o", "openai:gpt-4o-mini"}
    assert by_model["offline"].runs == 3 and by_model["offline"].input_tokens == 250
    assert by_model["gpt-4o"].cached_tokens == 40
    assert by_model["gpt-4o"].cost_usd == pytest.approx(0.5)

    by_template = {r.key: (r.runs, r.total_tokens) for r in await usage_store.report(tenant="acme", by="template")}
    assert by_template == {"analyst": (3, 330), "writer": (2, 65)}

    by_user = {r.key: r.runs for r in await usage_store.report(tenant="acme", by="user")}
    assert by_user == {"alice": 3, "bob": 2}

    by_day = [(r.key, r.runs) for r in await usage_store.report(tenant="acme", by="day")]
    assert by_day == [("2026-01-30", 3), ("2026-01-31", 1), ("2026-02-01", 1)]

    by_tenant = {r.key: r.runs for r in await usage_store.report(by="tenant")}
    assert by_tenant == {"acme": 5, "globex": 1}


async def test_filters(usage_store: UsageStore) -> None:
    await seed(usage_store)
    since = await usage_store.report(tenant="acme", since=D2, by="day")
    assert [r.key for r in since] == ["2026-01-31", "2026-02-01"]
    window = await usage_store.report(since=D2, until=D2, by="tenant")
    assert {r.key: r.runs for r in window} == {"acme": 1, "globex": 1}
    bob = await usage_store.report(tenant="acme", user="bob", by="model")
    assert sum(r.runs for r in bob) == 2
    assert await usage_store.report(tenant="nobody") == []
    assert await usage_store.report(tenant="acme", since=D3 + timedelta(days=1)) == []


async def test_spend_by_day_and_month(usage_store: UsageStore) -> None:
    await seed(usage_store)
    assert await usage_store.spend("acme", period="day", today=D1) == pytest.approx(0.52)
    assert await usage_store.spend("acme", period="month", today=D2) == pytest.approx(0.522)
    assert await usage_store.spend("acme", period="month", today=D3) == pytest.approx(0.001)
    assert await usage_store.spend("acme", "bob", period="month", today=D2) == pytest.approx(0.002)
    assert await usage_store.spend("globex", period="day", today=D1) == 0.0


async def test_concurrent_adds_are_not_lost(usage_store: UsageStore) -> None:
    await asyncio.gather(*(usage_store.add(rec(inp=1, out=1, cost=0.001)) for _ in range(50)))
    [cell] = await usage_store.records(tenant="acme")
    assert (cell.runs, cell.input_tokens) == (50, 50)
    assert cell.cost_usd == pytest.approx(0.05)


@pytest.mark.parametrize(
    "bad",
    [
        {"tenant": "acme:*"},
        {"tenant": "a b"},
        {"tenant": "x{y}"},
        {"tenant": ""},
        {"tenant": "t" * 201},
        {"user": "al\nice"},
        {"template": "ana|lyst"},
        {"model": "off line"},
        {"model": "a|b"},
        {"inp": -1},
    ],
)
async def test_malformed_ids_are_refused(usage_store: UsageStore, bad: dict) -> None:
    with pytest.raises(ValidationError):
        await usage_store.add(rec(**bad))
    assert await usage_store.records() == []


async def test_bad_queries_are_refused(usage_store: UsageStore) -> None:
    with pytest.raises(ValidationError):
        await usage_store.records(tenant="*")
    with pytest.raises(ValidationError):
        await usage_store.report(tenant="acme", by="colour")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await usage_store.records(since=D3, until=D1)
    with pytest.raises(ValidationError):
        await usage_store.spend("acme", period="year")  # type: ignore[arg-type]


async def test_model_names_with_slashes_and_colons(usage_store: UsageStore) -> None:
    await usage_store.add(rec(model="openrouter:meta-llama/llama-3.1-8b"))
    [row] = await usage_store.report(by="model")
    assert row.key == "openrouter:meta-llama/llama-3.1-8b"


async def test_a_record_with_an_op_id_is_added_once(usage_store: UsageStore) -> None:
    """A journal entry replayed after a crash between apply and mark must not count twice."""
    for _ in range(3):
        await usage_store.add(rec(inp=100, out=10, cost=0.25), op_id="run-1:1:usage:0")
    await usage_store.add(rec(inp=5, out=1, cost=0.5), op_id="run-2:1:usage:0")
    await usage_store.add(rec(inp=1, out=1, cost=0.0))  # no op id: counted each time, as before
    await usage_store.add(rec(inp=1, out=1, cost=0.0))
    await usage_store.flush()
    [row] = await usage_store.report(tenant="acme")
    assert (row.runs, row.input_tokens, row.output_tokens) == (4, 107, 13)
    assert row.cost_usd == pytest.approx(0.75)
