"""The event bus: memory, Redis Streams or Kafka. It follows ``EVENT_BUS`` (not ``state_url``) unless
``state_urls.events`` names it: a bus is not state, and the default stays in-process."""

from __future__ import annotations

from typing import Any

from agent_runtime.backends._registry import BackendTarget, Builder
from agent_runtime.errors import ConfigurationError
from agent_runtime.settings import Settings

__all__ = ["BUILDERS", "default_url"]


def default_url(settings: Settings) -> str:
    if settings.event_bus == "redis":
        return settings.redis_url
    if settings.event_bus == "kafka":
        return f"kafka://{settings.kafka_bootstrap_servers}"
    return "memory://"


def _memory(target: BackendTarget) -> Any:
    from agent_runtime.event_bus.memory import MemoryEventBus

    cfg = target.settings.events
    return MemoryEventBus(max_queue=cfg.memory_max_queue, publish_timeout_s=cfg.publish_timeout_s)


def _redis(target: BackendTarget) -> Any:
    from agent_runtime.event_bus.redis import RedisEventBus

    cfg = target.settings.events
    return RedisEventBus(
        target.url.raw,
        redis_settings=target.settings.redis,
        namespace=cfg.namespace,
        maxlen=cfg.redis_maxlen,
        claim_min_idle_s=cfg.claim_min_idle_s,
    )


def _kafka(target: BackendTarget) -> Any:
    try:
        from agent_runtime.event_bus.kafka import KafkaEventBus
    except ImportError as exc:  # pragma: no cover - aiokafka is the `kafka` extra
        raise ConfigurationError("event_bus=kafka needs aiokafka: pip install 'agent-runtime[kafka]'") from exc
    cfg = target.settings.events
    return KafkaEventBus(
        target.url.raw.split("://", 1)[1],
        namespace=cfg.namespace,
        partitions=cfg.kafka_partitions,
        idempotent=cfg.kafka_idempotent,
    )


BUILDERS: dict[str, Builder] = {"memory": _memory, "redis": _redis, "kafka": _kafka}
