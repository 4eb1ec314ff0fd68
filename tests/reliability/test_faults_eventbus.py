"""The event bus (Redis Streams) dies under a running runtime: runs still succeed and the events are
counted as lost; when Redis is back, events flow again without a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from agent_runtime._redis import breaker_probe
from agent_runtime.event_bus.observer import EventObserver
from agent_runtime.runtime import Runtime
from agent_runtime.settings import ReliabilitySettings, Settings
from agent_runtime.types import AgentContext, Principal
from tests.conftest import RedisServer
from tests.reliability._faults import redis_settings

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]
ALICE = Principal(tenant="acme", user="alice", scopes=frozenset({"*"}))


async def _flush(runtime: Runtime) -> None:
    """Hand buffered run events to the bus and wait until it took (or lost) them."""
    for observer in runtime.executor.observers.observers:
        if isinstance(observer, EventObserver):
            await observer.flush(10)


def _lost(runtime: Runtime) -> float:
    value = runtime.metrics.registry.get_sample_value("agent_runtime_eventbus_lost_total")
    return value or 0.0


async def test_runs_succeed_and_events_are_counted_lost_while_the_bus_is_down(
    fault_redis: RedisServer, tmp_path: Path
) -> None:
    # state in memory, only the bus on Redis: the runs themselves need nothing from Redis
    settings = redis_settings(fault_redis.url, tmp_path, event_bus="redis")
    settings = Settings.model_validate(settings.model_dump() | {"state_backend": "memory"})
    runtime = await Runtime.create(settings)
    stream = runtime.event_bus.stream
    raw = redis.Redis.from_url(fault_redis.url)
    try:
        await runtime.executor.execute_async(AgentContext(input="hello", template="writer", principal=ALICE))
        await _flush(runtime)
        assert raw.xlen(stream) == 2  # run.started, run.completed
        fault_redis.kill()
        results = [
            await runtime.executor.execute_async(AgentContext(input=f"run {i}", template="writer", principal=ALICE))
            for i in range(5)
        ]
        await _flush(runtime)
        assert all(result.status == "completed" for result in results)
        assert runtime.publisher.lost == 10 and _lost(runtime) == 10  # two events per run, none stored
        fault_redis.start()
        with breaker_probe():  # what /readyz does: its ping goes through the open breaker and closes it
            await runtime.event_bus.ping()
        await runtime.executor.execute_async(AgentContext(input="back", template="writer", principal=ALICE))
        await _flush(runtime)
        assert raw.xlen(stream) == 4  # appendonly kept the first two; nothing of the outage was half-written
    finally:
        raw.close()
        await runtime.aclose()


def test_reliability_defaults_are_documented() -> None:
    defaults = ReliabilitySettings()
    assert defaults.rate_limit_on_backend_error == "fail_open"
    assert defaults.abandoned_run_charge == "reserved"
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "## Failure policies" in readme
    for name in ReliabilitySettings.model_fields:
        assert name in readme, f"README's Failure policies section does not mention reliability.{name}"
