"""One behaviour contract, run against every backend on real servers (memory, redis-server, Tansu)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from agent_runtime.event_bus import Event, EventBus, MemoryDedupe, idempotent, make_event

from .conftest import eventually

pytestmark = pytest.mark.timeout(90)


def doc_event(i: int = 0, **fields: object) -> Event:
    return make_event("document.uploaded", {"n": i}, tenant="acme", run_id=f"run_{i}", **fields)


async def test_roundtrip_keeps_the_envelope(bus: EventBus) -> None:
    got: list[Event] = []

    async def handler(event: Event) -> None:
        got.append(event)

    await bus.subscribe("g1", handler)
    sent = make_event("run.completed", {"template": "analyst", "output": "395"}, tenant="acme", run_id="run_1")
    await bus.publish(sent)
    await eventually(lambda: len(got) == 1)
    assert got[0] == sent
    assert got[0].schema_version == 1 and got[0].payload["output"] == "395"


async def test_every_group_gets_every_event(bus: EventBus) -> None:
    seen: dict[str, list[str]] = {"a": [], "b": []}

    def recorder(group: str):
        async def handler(event: Event) -> None:
            seen[group].append(event.id)

        return handler

    await asyncio.gather(bus.subscribe("a", recorder("a")), bus.subscribe("b", recorder("b")))
    events = [doc_event(i) for i in range(10)]
    for event in events:
        await bus.publish(event)
    await eventually(lambda: len(seen["a"]) == 10 and len(seen["b"]) == 10)
    ids = {e.id for e in events}
    assert set(seen["a"]) == ids and set(seen["b"]) == ids


async def test_consumers_of_one_group_share_its_events(bus: EventBus) -> None:
    by_consumer: dict[str, list[str]] = {"c1": [], "c2": []}

    def worker(name: str):
        async def handler(event: Event) -> None:
            by_consumer[name].append(event.id)
            await asyncio.sleep(0.02)  # a handler that takes time, so the other consumer gets work

        return handler

    await asyncio.gather(
        bus.subscribe("shared", worker("c1"), consumer_name="c1", batch_size=1),
        bus.subscribe("shared", worker("c2"), consumer_name="c2", batch_size=1),
    )
    events = [doc_event(i) for i in range(24)]
    await bus.publish_many(events)
    await eventually(lambda: len(by_consumer["c1"]) + len(by_consumer["c2"]) >= 24)
    handled = Counter(by_consumer["c1"] + by_consumer["c2"])
    assert set(handled) == {e.id for e in events}
    assert max(handled.values()) == 1, "an event went to two consumers of one group"
    assert by_consumer["c1"] and by_consumer["c2"], "one consumer got no work"


async def test_type_filter_and_pattern(bus: EventBus) -> None:
    exact: list[str] = []
    runs: list[str] = []

    async def on_exact(event: Event) -> None:
        exact.append(event.type)

    async def on_runs(event: Event) -> None:
        runs.append(event.type)

    await bus.subscribe("exact", on_exact, types=["document.uploaded"])
    await bus.subscribe("runs", on_runs, pattern="run.*")
    await bus.publish(make_event("run.started", {"template": "writer"}))
    await bus.publish(doc_event(1))
    await bus.publish(make_event("run.failed", {"template": "writer", "error_code": "timeout"}))
    await eventually(lambda: len(exact) == 1 and len(runs) == 2)
    assert exact == ["document.uploaded"] and sorted(runs) == ["run.failed", "run.started"]


async def test_consumer_dying_before_ack_loses_nothing(bus: EventBus) -> None:
    received = asyncio.Event()

    async def dies_holding_events(event: Event) -> None:
        received.set()
        await asyncio.Event().wait()  # never acks: the consumer is aborted while here

    crashed = await bus.subscribe("crash", dies_holding_events, consumer_name="doomed")
    events = [doc_event(i) for i in range(5)]
    await bus.publish_many(events)
    await asyncio.wait_for(received.wait(), 30)
    await crashed.abort()

    survivor: list[str] = []

    async def handler(event: Event) -> None:
        survivor.append(event.id)

    await bus.subscribe("crash", handler, consumer_name="survivor")
    await eventually(lambda: {e.id for e in events} <= set(survivor), timeout=40)


async def test_poison_event_is_dead_lettered_and_the_consumer_goes_on(bus: EventBus) -> None:
    calls: Counter[str] = Counter()
    good: list[int] = []

    async def handler(event: Event) -> None:
        calls[event.id] += 1
        if event.payload.get("poison"):
            raise RuntimeError("cannot digest this")
        good.append(event.payload["n"])

    await bus.subscribe("dlq", handler, max_attempts=3, backoff_s=0.01)
    poison = make_event("document.uploaded", {"n": -1, "poison": True}, run_id="run_p")
    await bus.publish(poison)
    for i in range(3):
        await bus.publish(doc_event(i))
    await eventually(lambda: sorted(good) == [0, 1, 2])
    await eventually(lambda: _has_dead_letter(bus, poison.id))
    letters = [d for d in await bus.dead_letters() if d.event and d.event.id == poison.id]
    assert calls[poison.id] == 3
    assert letters[0].attempts == 3 and letters[0].group == "dlq" and "cannot digest" in letters[0].error
    assert letters[0].event == poison


async def _has_dead_letter(bus: EventBus, event_id: str) -> bool:
    return any(d.event and d.event.id == event_id for d in await bus.dead_letters())


async def test_handler_retried_until_it_succeeds(bus: EventBus) -> None:
    attempts: list[int] = []

    async def flaky(event: Event) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("downstream blip")

    sub = await bus.subscribe("retry", flaky, max_attempts=5, backoff_s=0.01)
    await bus.publish(doc_event())
    await eventually(lambda: sub.stats.handled == 1)
    assert len(attempts) == 3 and sub.stats.failed_attempts == 2 and sub.stats.dead_lettered == 0
    assert await bus.dead_letters() == []


async def test_dedupe_helper_runs_a_redelivered_event_once(bus: EventBus) -> None:
    handled: list[str] = []

    async def handler(event: Event) -> None:
        handled.append(event.id)

    sub = await bus.subscribe("dedupe", idempotent(handler, MemoryDedupe()))
    event = doc_event(7)
    await bus.publish(event)
    await bus.publish(event)  # e.g. a publisher retry after a lost ack
    marker = doc_event(8)
    await bus.publish(marker)
    await eventually(lambda: marker.id in handled)
    await eventually(lambda: sub.stats.handled == 3)
    assert sorted(handled) == sorted([event.id, marker.id])  # partitions may interleave the order


async def test_graceful_stop_finishes_and_acks_the_inflight_handler(bus: EventBus) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(event: Event) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    sub = await bus.subscribe("graceful", slow, consumer_name="first")
    first = doc_event(1)
    await bus.publish(first)
    await asyncio.wait_for(started.wait(), 30)
    await sub.stop(timeout=10)
    assert finished.is_set() and sub.stats.handled == 1 and not sub.running

    # The handled event was acked: the group's next consumer sees only newer events.
    later: list[str] = []

    async def record(event: Event) -> None:
        later.append(event.id)

    await bus.subscribe("graceful", record, consumer_name="second")
    marker = doc_event(2)
    await bus.publish(marker)
    await eventually(lambda: marker.id in later)
    await asyncio.sleep(1.0)  # leave room for a wrong redelivery (Redis claims after 0.5 s idle)
    assert first.id not in later


async def test_aclose_waits_for_inflight_handlers(bus: EventBus) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(event: Event) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.set()

    await bus.subscribe("closing", slow)
    await bus.publish(doc_event())
    await asyncio.wait_for(started.wait(), 30)
    await bus.aclose(timeout=10)
    assert finished.is_set()
