"""Build the configured event bus from ``Settings`` (``AGENT_RUNTIME_EVENT_BUS``)."""

from __future__ import annotations

from agent_runtime.errors import ConfigurationError
from agent_runtime.event_bus.base import EventBus
from agent_runtime.settings import Settings

__all__ = ["build_event_bus"]


def build_event_bus(settings: Settings) -> EventBus:
    """The bus named by ``settings.event_bus`` (memory, redis or kafka), bounded by ``settings.events``."""
    cfg = settings.events
    if settings.event_bus == "memory":
        from agent_runtime.event_bus.memory import MemoryEventBus

        return MemoryEventBus(max_queue=cfg.memory_max_queue, publish_timeout_s=cfg.publish_timeout_s)
    if settings.event_bus == "redis":
        from agent_runtime.event_bus.redis import RedisEventBus

        return RedisEventBus(
            settings.redis_url,
            redis_settings=settings.redis,
            namespace=cfg.namespace,
            maxlen=cfg.redis_maxlen,
            claim_min_idle_s=cfg.claim_min_idle_s,
        )
    if settings.event_bus == "kafka":
        try:
            from agent_runtime.event_bus.kafka import KafkaEventBus
        except ImportError as exc:  # pragma: no cover - aiokafka is the `kafka` extra
            raise ConfigurationError("event_bus=kafka needs aiokafka: pip install 'agent-runtime[kafka]'") from exc
        return KafkaEventBus(
            settings.kafka_bootstrap_servers,
            namespace=cfg.namespace,
            partitions=cfg.kafka_partitions,
            idempotent=cfg.kafka_idempotent,
        )
    raise ConfigurationError(f"unknown event bus {settings.event_bus!r}")
