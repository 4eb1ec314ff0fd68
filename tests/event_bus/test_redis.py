"""Redis Streams specifics: faults, trimming, delivery counts, a real killed consumer process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from agent_runtime.errors import BackendError
from agent_runtime.event_bus import Event, SafePublisher, idempotent, make_event
from agent_runtime.event_bus.redis import RedisDedupe, RedisEventBus

from ..conftest import RedisServer
from .conftest import eventually

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]


def doc(i: int = 0) -> Event:
    return make_event("document.uploaded", {"n": i})


async def test_redis_down_publish_fails_fast_then_recovers(fault_redis: RedisServer) -> None:
    bus = RedisEventBus(fault_redis.url, namespace="fault")
    await bus.publish(doc(1))
    fault_redis.kill()
    started = time.monotonic()
    with pytest.raises(BackendError):
        await bus.publish(doc(2))
    assert time.monotonic() - started < 5  # refused connection, bounded by the client timeouts
    safe = SafePublisher(bus)
    assert await safe.publish(doc(3)) is False and safe.lost == 1
    with pytest.raises(BackendError):
        await bus.ping()
    fault_redis.start()
    await bus.publish(doc(4))  # same bus object, no restart of the runtime
    assert redis.Redis.from_url(fault_redis.url).xlen(bus.stream) == 2  # appendonly kept the first one
    await bus.aclose()


async def test_stream_is_trimmed_to_about_maxlen(redis_url: str) -> None:
    bus = RedisEventBus(redis_url, namespace="trim", maxlen=100)
    await bus.publish_many([doc(i) for i in range(1000)])
    length = redis.Redis.from_url(redis_url).xlen(bus.stream)
    assert 100 <= length < 300  # MAXLEN ~ trims whole macro nodes, so a little above the bound
    await bus.aclose()


async def test_event_that_kills_every_consumer_ends_in_the_dlq(redis_url: str) -> None:
    """Deliveries counted by Redis (XPENDING) count as attempts, even though no handler raised."""
    bus = RedisEventBus(redis_url, namespace="killer", claim_min_idle_s=0.2)
    held = asyncio.Event()

    async def hang(event: Event) -> None:
        held.set()
        await asyncio.Event().wait()

    poison = doc(666)
    first = await bus.subscribe("g", hang, consumer_name="one", max_attempts=2)
    await bus.publish(poison)
    await asyncio.wait_for(held.wait(), 10)
    await first.abort()
    held.clear()
    second = await bus.subscribe("g", hang, consumer_name="two", max_attempts=2)
    await asyncio.wait_for(held.wait(), 10)  # claimed after 0.2 s idle: delivery 2
    await second.abort()

    calls: list[str] = []

    async def record(event: Event) -> None:
        calls.append(event.id)

    third = await bus.subscribe("g", record, consumer_name="three", max_attempts=2)
    await eventually(lambda: third.stats.dead_lettered == 1)
    letters = await bus.dead_letters()
    assert calls == [] and letters[-1].event == poison and letters[-1].attempts == 2
    await bus.aclose()


async def test_malformed_entry_is_dead_lettered(redis_url: str) -> None:
    bus = RedisEventBus(redis_url, namespace="garbage")
    seen: list[str] = []

    async def record(event: Event) -> None:
        seen.append(event.id)

    sub = await bus.subscribe("g", record)
    redis.Redis.from_url(redis_url).xadd(bus.stream, {"t": "document.uploaded", "e": "{oops"})
    good = doc(1)
    await bus.publish(good)
    await eventually(lambda: seen == [good.id] and sub.stats.dead_lettered == 1)
    letters = await bus.dead_letters()
    assert letters[0].event is None and letters[0].raw == "{oops" and "malformed" in letters[0].error
    await bus.aclose()


async def test_redis_dedupe_is_shared_between_consumers(redis_url: str) -> None:
    bus = RedisEventBus(redis_url, namespace="dd")
    store = RedisDedupe(bus.redis, namespace="dd", ttl_s=60)
    handled: list[str] = []

    async def handler(event: Event) -> None:
        handled.append(event.id)

    await bus.subscribe("a", idempotent(handler, store), consumer_name="x")
    event = doc(1)
    await bus.publish(event)
    await eventually(lambda: handled == [event.id])
    # Another group (think: another worker fleet) replays the stream from the start: the mark is shared.
    other = await bus.subscribe("b", idempotent(handler, store), consumer_name="y", start="earliest")
    await eventually(lambda: other.stats.handled == 1)
    assert handled == [event.id]
    await bus.aclose()


async def test_killed_consumer_process_loses_nothing(redis_url: str) -> None:
    """A real worker process is SIGKILLed holding unacked events; another consumer takes them over."""
    namespace = "proc"
    script = Path(__file__).with_name("_crashing_consumer.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, str(script), redis_url, namespace], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        bus = RedisEventBus(redis_url, namespace=namespace, claim_min_idle_s=0.5)
        events = [doc(i) for i in range(10)]
        await bus.publish_many(events)
        assert proc.stdout.readline().startswith("got")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        proc.wait()
    got: list[str] = []

    async def handler(event: Event) -> None:
        got.append(event.id)

    await bus.subscribe("proc", handler, consumer_name="survivor")
    await eventually(lambda: sorted(got) == sorted(e.id for e in events))
    await bus.aclose()
