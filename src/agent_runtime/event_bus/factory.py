"""Build the configured event bus from ``Settings`` (``AGENT_RUNTIME_EVENT_BUS``, or ``state_urls.events``)."""

from __future__ import annotations

from agent_runtime.event_bus.base import EventBus
from agent_runtime.settings import Settings

__all__ = ["build_event_bus"]


def build_event_bus(settings: Settings) -> EventBus:
    """The bus of ``settings`` (memory, redis or kafka; see ``agent_runtime.backends.events``)."""
    from agent_runtime.backends import build

    bus: EventBus = build("events", settings)
    return bus
