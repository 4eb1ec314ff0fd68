"""Memory-only behaviour: the bounded queue's overflow policy."""

from __future__ import annotations

import asyncio

import pytest

from agent_runtime.errors import BackendError
from agent_runtime.event_bus import Event, MemoryEventBus, SafePublisher, make_event

from .conftest import eventually


async def test_full_group_queue_makes_publish_fail_after_the_timeout() -> None:
    bus = MemoryEventBus(max_queue=2, publish_timeout_s=0.05)
    gate = asyncio.Event()
    handled: list[str] = []

    async def blocked(event: Event) -> None:
        await gate.wait()
        handled.append(event.id)

    await bus.subscribe("slow", blocked)
    events = [make_event("document.uploaded", {"n": i}) for i in range(4)]
    await bus.publish(events[0])
    await eventually(lambda: bus.queued("slow") == 0)  # taken by the consumer, handler blocked
    await bus.publish(events[1])
    await bus.publish(events[2])
    with pytest.raises(BackendError, match="full"):
        await bus.publish(events[3])
    assert bus.overflows == 1

    safe = SafePublisher(bus)
    assert await safe.publish(events[3]) is False and safe.lost == 1

    gate.set()  # the consumer drains: publishing works again, nothing accepted was dropped
    await eventually(lambda: len(handled) == 3)
    await bus.publish(events[3])
    await eventually(lambda: len(handled) == 4)
    assert handled == [e.id for e in events]
    await bus.aclose()


async def test_publish_without_subscribers_and_after_close() -> None:
    bus = MemoryEventBus()
    await bus.publish(make_event("run.started", {"template": "writer"}))  # nobody listens: nothing kept
    await bus.aclose()
    with pytest.raises(Exception, match="closed"):
        await bus.publish(make_event("run.started", {"template": "writer"}))
