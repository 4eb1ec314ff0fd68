"""SafePublisher: the caller never sees a bus failure, and every lost event is counted."""

from __future__ import annotations

import asyncio

from agent_runtime.event_bus import Event, MemoryEventBus, SafePublisher, make_event

from .conftest import eventually


async def test_background_publish_is_bounded_and_counted() -> None:
    bus = MemoryEventBus(max_queue=1, publish_timeout_s=0.05)
    gate = asyncio.Event()

    async def blocked(event: Event) -> None:
        await gate.wait()

    await bus.subscribe("g", blocked)
    lost: list[str] = []
    safe = SafePublisher(bus, max_pending=2, on_lost=lambda event, exc: lost.append(event.id))
    for i in range(6):
        safe.publish_nowait(make_event("tool.called", {"tool": f"t{i}"}))
    assert safe.lost == 4 and safe.pending == 2  # over max_pending: counted at once, not queued
    await safe.flush(timeout=5)
    assert safe.published + safe.lost == 6 and len(lost) == safe.lost
    gate.set()
    await safe.aclose()
    await bus.aclose()


async def test_broken_bus_never_raises() -> None:
    bus = MemoryEventBus()
    await bus.aclose()
    safe = SafePublisher(bus)
    assert await safe.publish(make_event("run.started", {"template": "w"})) is False
    safe.publish_nowait(make_event("run.started", {"template": "w"}))
    await eventually(lambda: safe.lost == 2)
