"""EventObserver: real runs publish the catalogue's events; a broken bus never fails a run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import QuotaExceededError, RateLimitError
from agent_runtime.event_bus import CATALOGUE, Event, EventBus, MemoryEventBus, SafePublisher
from agent_runtime.event_bus.observer import TRIGGER_KEY, EventObserver, cause_of
from agent_runtime.event_bus.redis import RedisEventBus
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal
from tests.helpers import ManualClock

from ..conftest import RedisServer
from .conftest import eventually

ACME = Principal(tenant="acme", user="ana", scopes=frozenset({"agents:run:*"}))


class Collector:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, type: str) -> list[Event]:
        return [e for e in self.events if e.type == type]


async def collect(bus: EventBus) -> Collector:
    collector = Collector()
    await bus.subscribe("collector", collector)
    return collector


def assert_catalogue_valid(event: Event) -> None:
    version, model = CATALOGUE[event.type]
    assert event.schema_version == version
    model.model_validate(event.payload)
    assert Event.from_json(event.to_json()) == event


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = await Runtime.create(Settings(state_backend="memory", data_dir=tmp_path))
    yield rt
    await rt.aclose()


async def test_a_real_run_publishes_started_tool_and_completed() -> None:
    bus = MemoryEventBus()
    publisher = SafePublisher(bus)
    executor = AgentExecutor(AgentFactory(), observers=[EventObserver(publisher)])
    collector = await collect(bus)
    context = AgentContext(input="what is 17*23+4?", template="analyst", principal=ACME, request_id="req_1")
    result = await executor.execute_async(context)
    await eventually(lambda: len(collector.events) == 3)

    started, completed, tool = (collector.of(t)[0] for t in ("run.started", "run.completed", "tool.called"))
    assert started.payload == {"template": "analyst", "attempt": 1, "user": "ana"}
    assert "395" in completed.payload["output"] and completed.payload["output"] == result.output
    assert completed.payload["usage"] == result.usage.model_dump() and completed.payload["usage"]["total_tokens"] > 0
    assert completed.payload["tool_calls"] == 1 and completed.payload["duration_ms"] == result.duration_ms > 0
    assert tool.payload["tool"] == "calculator" and tool.payload["status"] == "ok"
    for event in collector.events:
        assert_catalogue_valid(event)
        assert (event.tenant, event.run_id, event.correlation_id) == ("acme", result.run_id, "req_1")
        assert event.depth == 0
    assert publisher.published == 3 and publisher.lost == 0
    await bus.aclose()


async def test_failures_publish_run_failed_and_the_rejection(runtime: Runtime) -> None:
    collector = await collect(runtime.event_bus)
    limited = Principal(tenant="acme", user="rl", scopes=frozenset({"agents:run:*"}), rpm=1)
    broke = Principal(tenant="acme", user="q", scopes=frozenset({"agents:run:*"}), daily_tokens=1)
    await runtime.executor.execute_async(AgentContext(input="what is 2*3?", template="analyst", principal=limited))
    with pytest.raises(RateLimitError):
        await runtime.executor.execute_async(AgentContext(input="what is 2*3?", template="analyst", principal=limited))
    with pytest.raises(QuotaExceededError):
        await runtime.executor.execute_async(AgentContext(input="what is 2*3?", template="analyst", principal=broke))
    await eventually(lambda: len(collector.of("quota.exceeded")) == 1)

    failed = collector.of("run.failed")
    assert [e.payload["error_code"] for e in failed] == ["rate_limited", "quota_exceeded"]
    (rejected,) = collector.of("ratelimit.rejected")
    assert (
        rejected.payload["scope"] == "key" and rejected.payload["user"] == "rl" and rejected.payload["retry_after"] > 0
    )
    (quota,) = collector.of("quota.exceeded")
    assert quota.payload["scope"] == "daily_tokens" and quota.tenant == "acme" and quota.run_id == failed[1].run_id
    for event in collector.events:
        assert_catalogue_valid(event)


async def test_triggered_runs_carry_depth_and_the_cause_correlation(runtime: Runtime) -> None:
    collector = await collect(runtime.event_bus)
    cause = {"event_id": "evt_1", "event_type": "document.uploaded", "rule": "r", "depth": 2, "correlation_id": "c_9"}
    context = AgentContext(input="what is 1+1?", template="analyst", principal=ACME, metadata={TRIGGER_KEY: cause})
    await runtime.executor.execute_async(context)
    await eventually(lambda: len(collector.of("run.completed")) == 1)
    assert {(e.depth, e.correlation_id) for e in collector.events} == {(3, "c_9")}
    # forged or malformed causes are ignored rather than trusted
    assert cause_of(AgentContext(input="x", template="t", metadata={TRIGGER_KEY: {"depth": "9"}})) == (0, None)
    assert cause_of(AgentContext(input="x", template="t", metadata={TRIGGER_KEY: [1]})) == (0, None)


async def test_session_manager_publishes_created_and_expired(runtime: Runtime) -> None:
    collector = await collect(runtime.event_bus)
    runtime.sessions.clock = clock = ManualClock()
    session = await runtime.sessions.create_session("ana", tenant="acme", template="writer", ttl_s=60)
    clock.advance(61)
    assert await runtime.sessions.cleanup_expired() == 1
    await eventually(lambda: len(collector.events) == 2)
    created, expired = collector.events
    assert (created.type, created.tenant) == ("session.created", "acme")
    assert created.payload == {"session_id": session.id, "user": "ana", "template": "writer"}
    assert (expired.type, expired.tenant, expired.payload) == ("session.expired", "acme", {"session_id": session.id})
    for event in collector.events:
        assert_catalogue_valid(event)


async def test_session_hook_failures_never_fail_the_session_call(runtime: Runtime) -> None:
    def broken(type: str, data: dict[str, object]) -> None:
        raise RuntimeError("hook down")

    runtime.sessions.on_event = broken
    session = await runtime.sessions.create_session("ana", tenant="acme")
    assert (await runtime.sessions.get_session(session.id, tenant="acme")).user_id == "ana"


async def test_closed_bus_loses_events_but_never_the_run(runtime: Runtime) -> None:
    lost_metric_before = _lost_metric(runtime)
    await runtime.event_bus.aclose()
    result = await runtime.executor.execute_async(
        AgentContext(input="what is 17*23+4?", template="analyst", principal=ACME)
    )
    assert "395" in result.output
    await eventually(lambda: runtime.publisher.lost == 3)
    assert runtime.publisher.published == 0
    assert _lost_metric(runtime) - lost_metric_before == 3  # counted in agent_runtime_eventbus_*


def _lost_metric(runtime: Runtime) -> float:
    counter = runtime.metrics.eventbus_counters["lost"]
    return float(counter._value.get())


@pytest.mark.redis
async def test_redis_down_never_fails_the_run(fault_redis: RedisServer) -> None:
    bus = RedisEventBus(fault_redis.url, namespace="observer")
    publisher = SafePublisher(bus, timeout_s=2.0)
    observer = EventObserver(publisher)
    executor = AgentExecutor(AgentFactory(), observers=[observer])
    context = AgentContext(input="what is 6*7?", template="analyst", principal=ACME)
    await executor.execute_async(context)
    await observer.flush(timeout=10)
    assert publisher.published == 3
    fault_redis.kill()
    result = await executor.execute_async(context.model_copy(update={"run_id": "run_down"}))
    assert "42" in result.output
    await observer.flush(timeout=10)
    assert publisher.lost == 3 and publisher.published == 3
    fault_redis.start()
    await executor.execute_async(context.model_copy(update={"run_id": "run_back"}))
    await observer.flush(timeout=10)
    assert publisher.published == 6 and publisher.lost == 3  # recovered without rebuilding anything
    await bus.aclose()


def test_notifications_outside_an_event_loop_are_counted_not_raised() -> None:
    publisher = SafePublisher(MemoryEventBus())
    observer = EventObserver(publisher)
    observer.run_started(AgentContext(input="x", template="analyst", principal=ACME))
    observer.session_event("session.created", {"session_id": "s", "tenant": "acme"})
    assert publisher.lost == 2


async def test_an_abandoned_stream_is_published_as_failed_not_completed() -> None:
    bus = MemoryEventBus()
    observer = EventObserver(SafePublisher(bus))
    executor = AgentExecutor(AgentFactory(), observers=[observer])
    collector = await collect(bus)
    context = AgentContext(input="write a long story about the sea", template="writer", principal=ACME)
    stream = executor.execute_stream(context)
    async for event in stream:
        if event.type == "token":
            break
    await stream.aclose()
    await eventually(lambda: len(collector.of("run.failed")) == 1)
    await observer.flush(timeout=5)
    (failed,) = collector.of("run.failed")
    assert failed.payload["error_code"] == "cancelled" and not collector.of("run.completed")
    assert_catalogue_valid(failed)
    await bus.aclose()
