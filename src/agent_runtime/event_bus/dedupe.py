"""Idempotent handling: skip events whose id a handler already processed.

At-least-once delivery means a handler can see an event twice (a consumer crashed between handling
and acking, a publisher retried). Wrap side-effecting handlers with ``idempotent``: the mark is
written only after the handler succeeded, so a failed attempt is retried rather than skipped.
Two consumers handling the same event at the very same moment can still both run it; the mark
narrows duplicates to that window.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable

from agent_runtime.event_bus.base import Handler
from agent_runtime.event_bus.events import Event

__all__ = ["DedupeStore", "MemoryDedupe", "idempotent"]


class DedupeStore(ABC):
    """Remembers processed keys for a while."""

    @abstractmethod
    async def seen(self, key: str) -> bool: ...

    @abstractmethod
    async def mark(self, key: str) -> None: ...


class MemoryDedupe(DedupeStore):
    """Per-process marks: bounded (oldest forgotten first) and expiring after ``ttl_s``."""

    def __init__(self, *, max_items: int = 100_000, ttl_s: float = 86_400) -> None:
        self._marks: OrderedDict[str, float] = OrderedDict()
        self.max_items = max_items
        self.ttl_s = ttl_s

    async def seen(self, key: str) -> bool:
        expires = self._marks.get(key)
        if expires is None:
            return False
        if expires < time.monotonic():
            del self._marks[key]
            return False
        return True

    async def mark(self, key: str) -> None:
        self._marks[key] = time.monotonic() + self.ttl_s
        self._marks.move_to_end(key)
        while len(self._marks) > self.max_items:
            self._marks.popitem(last=False)


def idempotent(handler: Handler, store: DedupeStore, *, key: Callable[[Event], str] | None = None) -> Handler:
    """Wrap ``handler`` so an event whose key (default: its id) was already handled is acked unseen."""
    key_of = key or (lambda event: event.id)

    async def wrapper(event: Event) -> None:
        event_key = key_of(event)
        if await store.seen(event_key):
            return
        await handler(event)
        await store.mark(event_key)

    wrapper.__name__ = getattr(handler, "__name__", "handler")
    wrapper.__wrapped__ = handler  # type: ignore[attr-defined]
    return wrapper
