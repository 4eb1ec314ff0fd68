"""ConsumerRunner: registered handlers run under one worker group until a graceful stop."""

from __future__ import annotations

import asyncio

import pytest

from agent_runtime.errors import ValidationError
from agent_runtime.event_bus import ConsumerRegistry, ConsumerRunner, Event, EventBus, make_event

from .conftest import eventually


async def test_runner_runs_every_registration_and_stops_gracefully(bus: EventBus) -> None:
    registry = ConsumerRegistry()
    uploads: list[str] = []
    everything: list[str] = []
    finished = asyncio.Event()

    @registry.handler("uploads", types=["document.uploaded"])
    async def on_upload(event: Event) -> None:
        uploads.append(event.id)
        await asyncio.sleep(0.2)
        finished.set()

    async def audit(event: Event) -> None:
        everything.append(event.type)

    registry.register("audit", audit)
    with pytest.raises(ValidationError):
        registry.register("audit", audit)

    runner = ConsumerRunner(bus, "worker", registry, shutdown_timeout_s=10)
    task = asyncio.create_task(runner.run(install_signals=False))
    await eventually(lambda: len(runner.subscriptions) == 2, timeout=60)
    await bus.publish(make_event("run.started", {"template": "writer"}))
    await bus.publish(make_event("document.uploaded", {"path": "a.txt"}))
    await eventually(lambda: len(uploads) == 1 and len(everything) == 2)
    runner.request_stop()
    await asyncio.wait_for(task, 30)
    assert finished.is_set()
    assert runner.stats["uploads"].handled == 1 and runner.stats["audit"].handled == 2
    assert set(runner.subscriptions) == {"uploads", "audit"}
    assert runner.group_of("audit") == "worker.audit"


async def test_runner_refuses_an_empty_registry() -> None:
    from agent_runtime.event_bus import MemoryEventBus

    with pytest.raises(ValidationError):
        await ConsumerRunner(MemoryEventBus(), "worker", ConsumerRegistry()).start()
