"""One contract for the run queues: the local queue on memory and SQLite run stores (a real file), and
Redis Streams with a consumer group (a real redis-server): put / take / ack, the bound, hand-back,
the store's pending records, and the take-over of a dead consumer's entries."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.runs import MemoryRunRecordStore, Run, RunRecordStore
from agent_runtime.runs.queue import Delivery, FairBuffer, LocalRunQueue, QueueFullError, RunQueue
from agent_runtime.runs.queue.redis import RedisRunQueue
from agent_runtime.runs.sqlite import SQLiteRunRecordStore
from agent_runtime.settings import RedisSettings

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
]

Factory = Callable[..., Awaitable[RunQueue]]


@pytest.fixture(params=BACKENDS)
async def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    made: list[RunQueue | RunRecordStore] = []
    store: RunRecordStore = (
        SQLiteRunRecordStore(tmp_path / "runs.sqlite3") if request.param == "sqlite" else MemoryRunRecordStore()
    )
    made.append(store)

    async def make(*, consumer: str = "w1", lease_s: float = 30.0, **options: Any) -> RunQueue:
        queue: RunQueue
        if request.param == "redis":
            url = request.getfixturevalue("redis_url")
            # a stream of this test's own: a consumer another test left running cannot take its entries
            settings = RedisSettings(key_prefix=f"qc{id(made)}")
            queue = RedisRunQueue(url, settings, consumer=consumer, lease_s=lease_s, scan_s=0.0, **options)
        else:
            queue = LocalRunQueue(store, scan_s=3600.0, **options)
        made.append(queue)
        return queue

    make.store = store  # type: ignore[attr-defined]
    make.backend = request.param  # type: ignore[attr-defined]
    yield make
    for closable in reversed(made):
        await closable.aclose()


def run(run_id: str, tenant: str = "acme") -> Run:
    return Run(run_id=run_id, tenant=tenant, template="writer", input="hi")


async def take_all(queue: RunQueue, count: int, timeout: float = 5.0) -> list[Delivery]:
    """Take until ``count`` deliveries came (a deadline, not a sleep)."""
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += await queue.take(count - len(got), 0.2)
    return got


async def test_put_take_ack(make_queue: Factory) -> None:
    queue = await make_queue()
    for run_id in ("run_1", "run_2", "run_3"):
        await queue.put(run(run_id))
    assert await queue.depth() == 3
    taken = await take_all(queue, 3)
    assert sorted(d.run_id for d in taken) == ["run_1", "run_2", "run_3"]
    assert {d.tenant for d in taken} == {"acme"}
    assert await queue.depth() == 0
    for delivery in taken:
        await queue.ack(delivery)
    assert await queue.take(5, 0.05) == []


async def test_take_waits_at_most_its_timeout(make_queue: Factory) -> None:
    queue = await make_queue()
    started = time.monotonic()
    assert await queue.take(1, 0.2) == []
    assert time.monotonic() - started < 2.0


async def test_a_full_queue_refuses_with_retry_after(make_queue: Factory) -> None:
    queue = await make_queue(max_queued=2)
    await queue.put(run("run_1"))
    await queue.put(run("run_2"))
    with pytest.raises(QueueFullError) as refused:
        await queue.put(run("run_3"))
    assert refused.value.status_code == 503 and refused.value.retry_after == 1.0
    taken = await take_all(queue, 1)
    await queue.ack(taken[0])
    await queue.put(run("run_3"))  # room again once one was done with


async def test_released_deliveries_are_taken_again(make_queue: Factory) -> None:
    queue = await make_queue()
    await queue.put(run("run_1"))
    (taken,) = await take_all(queue, 1)
    await queue.release([taken])
    (again,) = await take_all(queue, 1)
    assert again.run_id == "run_1"
    await queue.ack(again)
    assert await queue.take(1, 0.05) == []


async def test_a_dead_consumers_entries_are_taken_over_after_the_lease(make_queue: Factory) -> None:
    dead = await make_queue(consumer="dead", lease_s=0.2)
    await dead.put(run("run_1"))
    (held,) = await take_all(dead, 1)  # taken, never acknowledged: its worker died
    live = await make_queue(consumer="live", lease_s=0.2)
    if make_queue.backend != "redis":  # type: ignore[attr-defined]
        # the local queue is the store's pending records: a new process finds the run there
        await make_queue.store.create(run("run_1"))  # type: ignore[attr-defined]
        live = LocalRunQueue(make_queue.store, scan_s=0.0)  # type: ignore[attr-defined]
    (taken,) = await take_all(live, 1)
    assert taken.run_id == held.run_id == "run_1"
    await live.ack(taken)


@pytest.mark.redis
async def test_touch_keeps_a_live_consumers_entries(redis_url: str) -> None:
    holder = RedisRunQueue(redis_url, consumer="holder", lease_s=0.3, scan_s=0.0)
    other = RedisRunQueue(redis_url, consumer="other", lease_s=0.3, scan_s=0.0)
    try:
        await holder.put(run("run_1"))
        (held,) = await take_all(holder, 1)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # past three leases, touched all along: never taken over
            await holder.touch([held])
            assert await other.take(1, 0.05) == []
        taken = await take_all(other, 1)  # untouched: taken over after one lease
        assert [d.run_id for d in taken] == ["run_1"]
    finally:
        await holder.aclose()
        await other.aclose()


def test_fair_buffer_round_robins_tenants() -> None:
    fair = FairBuffer()
    for i in range(4):
        fair.push(Delivery(f"a{i}", "a"))
    fair.push(Delivery("b0", "b"))
    fair.push(Delivery("c0", "c"))
    assert not fair.push(Delivery("a1", "a"))  # already waiting
    fair.drop("a2")
    order = [d.run_id for d in iter(fair.pop, None)]
    assert order == ["a0", "b0", "c0", "a1", "a3"]
    assert len(fair) == 0


async def test_the_local_queue_hands_tenants_out_in_turn(tmp_path: Path) -> None:
    queue = LocalRunQueue(MemoryRunRecordStore(), scan_s=3600.0)
    for i in range(5):
        await queue.put(run(f"a{i}", "a"))
    await queue.put(run("b0", "b"))
    assert [d.run_id for d in await queue.take(3, 0.0)] == ["a0", "b0", "a1"]


@pytest.mark.redis
async def test_the_redis_queue_survives_its_stream_being_deleted(redis_server: Any, redis_url: str) -> None:
    queue = RedisRunQueue(redis_url, consumer="w1", scan_s=0.0)
    try:
        await queue.put(run("run_1"))
        redis_server.flushall()  # the stream and its group are gone
        assert await queue.depth() == 0  # NOGROUP: counted as empty, not an error
        await queue.touch([Delivery("run_1", "t", token="1-0")])  # nothing to keep, not an error
        assert await queue.take(1, 0.05) == []
        await queue.put(run("run_2"))
        assert [d.run_id for d in await take_all(queue, 1)] == ["run_2"]
    finally:
        await queue.aclose()
