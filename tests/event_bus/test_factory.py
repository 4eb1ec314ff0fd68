"""build_event_bus: the configured backend, bounded by the settings."""

from __future__ import annotations

import agent_runtime.event_bus as event_bus
from agent_runtime.event_bus import MemoryEventBus, build_event_bus
from agent_runtime.event_bus.kafka import KafkaEventBus
from agent_runtime.event_bus.redis import RedisEventBus
from agent_runtime.settings import Settings


async def test_each_backend_is_built_from_settings(redis_url: str) -> None:
    memory = build_event_bus(Settings(event_bus="memory", events={"memory_max_queue": 7}))
    assert isinstance(memory, MemoryEventBus) and memory.max_queue == 7

    redis_bus = build_event_bus(Settings(event_bus="redis", redis_url=redis_url, events={"namespace": "prod"}))
    assert isinstance(redis_bus, RedisEventBus) and redis_bus.stream == "ar:events:prod"
    await redis_bus.ping()
    await redis_bus.aclose()

    kafka_bus = build_event_bus(Settings(event_bus="kafka", kafka_bootstrap_servers="127.0.0.1:1"))
    assert isinstance(kafka_bus, KafkaEventBus) and kafka_bus.topic == "agent_runtime.events.default"
    assert kafka_bus.idempotent and kafka_bus.dlq_topic == "agent_runtime.events.default.dlq"


def test_public_names() -> None:
    assert sorted(event_bus.__all__) == event_bus.__all__
    assert all(hasattr(event_bus, name) for name in event_bus.__all__)
