"""Runtime events: the envelope, the bus (memory, Redis Streams, Kafka) and the consumer worker."""

from __future__ import annotations

from agent_runtime.event_bus.base import (
    ConsumerStats,
    DeadLetter,
    EventBus,
    EventFilter,
    Handler,
    RetryPolicy,
    Subscription,
)
from agent_runtime.event_bus.consumer import ConsumerRegistry, ConsumerRunner, Registration
from agent_runtime.event_bus.dedupe import DedupeStore, MemoryDedupe, idempotent
from agent_runtime.event_bus.events import CATALOGUE, Event, EventType, make_event
from agent_runtime.event_bus.factory import build_event_bus
from agent_runtime.event_bus.memory import MemoryEventBus
from agent_runtime.event_bus.publisher import SafePublisher

__all__ = [
    "CATALOGUE",
    "ConsumerRegistry",
    "ConsumerRunner",
    "ConsumerStats",
    "DeadLetter",
    "DedupeStore",
    "Event",
    "EventBus",
    "EventFilter",
    "EventType",
    "Handler",
    "MemoryDedupe",
    "MemoryEventBus",
    "Registration",
    "RetryPolicy",
    "SafePublisher",
    "Subscription",
    "build_event_bus",
    "idempotent",
    "make_event",
]
