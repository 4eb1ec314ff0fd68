"""The runtime counts the bus's published, consumed and dead-lettered events in its Prometheus metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from agent_runtime.event_bus.events import Event
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal


def _counts(runtime: Runtime) -> dict[str, float]:
    text = runtime.metrics.render()[0].decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("agent_runtime_eventbus_") and sample.name.endswith("_total")
    }


async def test_published_consumed_and_dead_lettered_are_counted(tmp_path: Path) -> None:
    runtime = await Runtime.create(Settings(state_backend="memory", data_dir=tmp_path))
    try:
        bus = runtime.event_bus
        seen: list[str] = []

        async def handler(event: Event) -> None:
            if event.payload.get("poison"):
                raise ValueError("cannot handle this one")
            seen.append(event.type)

        await bus.subscribe("metrics-test", handler, types=["doc.uploaded"], max_attempts=2, backoff_s=0.001)
        principal = Principal(tenant="acme", user="ada", scopes=frozenset({"admin"}))
        await runtime.executor.execute_async(AgentContext(input="hi", template="writer", principal=principal))
        await bus.publish(Event(type="doc.uploaded", payload={"n": 1}))
        await bus.publish(Event(type="doc.uploaded", payload={"poison": True}))
        await runtime.publisher.flush(5)
        for _ in range(200):
            counts = _counts(runtime)
            if counts.get("agent_runtime_eventbus_dead_lettered_total", 0) >= 1 and seen:
                break
            await asyncio.sleep(0.01)
        assert counts["agent_runtime_eventbus_published_total"] >= 2  # run.started, run.completed
        assert counts["agent_runtime_eventbus_consumed_total"] == 1
        assert counts["agent_runtime_eventbus_dead_lettered_total"] == 1
    finally:
        await runtime.aclose()
