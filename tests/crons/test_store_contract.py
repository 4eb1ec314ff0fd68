"""One contract for the cron stores: memory, SQLite (a real file), Redis (a real redis-server), PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.crons import CronFilter, CronStore, Schedule
from agent_runtime.crons.memory import MemoryCronStore
from agent_runtime.errors import ConflictError
from agent_runtime.types import Principal
from tests.backends import STATE_BACKENDS, build_store

Factory = Callable[..., Awaitable[CronStore]]


@pytest.fixture(params=STATE_BACKENDS)
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    made: list[CronStore] = []

    async def make(**options: Any) -> CronStore:
        store: CronStore = build_store("crons", request.param, request, tmp_path, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()


def schedule(cron_id: str, *, tenant: str = "acme", user: str = "ann", **fields: Any) -> Schedule:
    principal = Principal(tenant=tenant, user=user, scopes=frozenset({"agents:run:*"}), key_id="key_1")
    base = {"cron_id": cron_id, "tenant": tenant, "user": user, "principal": principal, "template": "writer"}
    base |= {"input": "hi", "schedule": "*/5 * * * *", "next_run_at": 1000.0}
    return Schedule.model_validate(base | fields)


async def test_create_get_roundtrip_and_tenant_confinement(make_store: Factory) -> None:
    store = await make_store()
    original = schedule("c1", session_id="ses_1", metadata={"k": "v"}, payload={"input": {"messages": []}})
    await store.create(original)
    got = await store.get("c1", tenant="acme")
    assert got == original and got is not None and got.principal.key_id == "key_1"
    assert await store.get("c1", tenant="other") is None
    assert await store.get("nope") is None


async def test_find_filters_sorts_and_paginates_one_tenant(make_store: Factory) -> None:
    store = await make_store()
    for index in range(5):
        await store.create(schedule(f"c{index}", created_at=100.0 + index, enabled=index % 2 == 0))
    await store.create(schedule("bob1", user="bob", created_at=50.0))
    await store.create(schedule("x1", tenant="other", created_at=200.0))
    newest = await store.find(CronFilter(tenant="acme", limit=3))
    assert [s.cron_id for s in newest] == ["c4", "c3", "c2"]
    rest = await store.find(CronFilter(tenant="acme", limit=3, offset=3))
    assert [s.cron_id for s in rest] == ["c1", "c0", "bob1"]
    enabled = await store.find(CronFilter(tenant="acme", user="ann", enabled=True, descending=False))
    assert [s.cron_id for s in enabled] == ["c0", "c2", "c4"]
    assert [s.cron_id for s in await store.find(CronFilter(tenant="other"))] == ["x1"]


async def test_update_is_compare_and_set(make_store: Factory) -> None:
    store = await make_store()
    await store.create(schedule("c1"))
    moved = await store.update("c1", match={"next_run_at": 1000.0}, next_run_at=1300.0)
    assert moved is not None and moved.next_run_at == 1300.0
    assert await store.update("c1", match={"next_run_at": 1000.0}, next_run_at=1600.0) is None
    assert await store.update("c1", tenant="other", enabled=False) is None
    assert await store.update("missing", enabled=False) is None
    got = await store.get("c1")
    assert got is not None and got.next_run_at == 1300.0 and got.enabled


async def test_due_lists_enabled_schedules_whose_tick_has_come(make_store: Factory) -> None:
    store = await make_store()
    await store.create(schedule("late", next_run_at=900.0))
    await store.create(schedule("now", next_run_at=1000.0))
    await store.create(schedule("later", next_run_at=1100.0))
    await store.create(schedule("off", next_run_at=800.0, enabled=False))
    await store.create(schedule("over", next_run_at=None))
    assert [s.cron_id for s in await store.due(1000.0)] == ["late", "now"]
    assert [s.cron_id for s in await store.due(1000.0, limit=1)] == ["late"]
    await store.update("later", next_run_at=950.0)
    await store.update("late", enabled=False)
    assert [s.cron_id for s in await store.due(1000.0)] == ["later", "now"]


async def test_a_tick_is_claimed_once(make_store: Factory) -> None:
    store = await make_store()
    await store.create(schedule("c1"))
    assert await store.claim_tick("c1", 1000.0, now=1000.5)
    assert not await store.claim_tick("c1", 1000.0, now=1000.6)
    assert await store.claim_tick("c1", 1300.0, now=1300.1)
    assert await store.claim_tick("c2", 1000.0, now=1000.5)  # another schedule's tick is another key


async def test_concurrent_claims_have_one_winner(make_store: Factory) -> None:
    first = await make_store()
    # three clients of one engine (a memory store is only shared within its process: the same object)
    stores = [first] * 3 if isinstance(first, MemoryCronStore) else [first, await make_store(), await make_store()]
    await stores[0].create(schedule("c1"))
    results = await asyncio.gather(*(s.claim_tick("c1", 1000.0, now=1000.0) for s in stores for _ in range(3)))
    assert sorted(results) == [False] * 8 + [True]


async def test_delete_only_the_owners(make_store: Factory) -> None:
    store = await make_store()
    await store.create(schedule("c1"))
    assert not await store.delete("c1", tenant="other")
    assert await store.delete("c1", tenant="acme")
    assert not await store.delete("c1", tenant="acme")
    assert await store.get("c1") is None and await store.due(10_000.0) == []


async def test_schedules_per_tenant_are_bounded(make_store: Factory) -> None:
    store = await make_store(max_per_tenant=2)
    await store.create(schedule("c1"))
    await store.create(schedule("c2"))
    with pytest.raises(ConflictError) as caught:
        await store.create(schedule("c3"))
    assert caught.value.details == {"limit": 2}
    await store.create(schedule("x1", tenant="other"))  # another tenant has a cap of its own
    assert await store.delete("c1", tenant="acme")
    await store.create(schedule("c3"))
    assert len(await store.find(CronFilter(tenant="acme"))) == 2


async def test_a_schedule_round_trips_time_fields_exactly(make_store: Factory) -> None:
    store = await make_store()
    now = time.time()
    await store.create(schedule("c1", next_run_at=now, end_time=now + 86_400.0, last_error={"code": "x"}))
    got = await store.get("c1")
    assert got is not None and got.next_run_at == now and got.end_time == now + 86_400.0
    assert [s.cron_id for s in await store.due(now)] == ["c1"]
