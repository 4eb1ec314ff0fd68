"""Publishing that never fails the caller: the executor's way onto the bus.

A run must not fail because the bus is down or full, so producers of the runtime's own events
publish through ``SafePublisher``: failures are logged, counted in ``lost`` and reported to an
optional ``on_lost`` hook (metrics), never raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from agent_runtime.event_bus.base import EventBus
from agent_runtime.event_bus.events import Event

__all__ = ["SafePublisher"]

log = logging.getLogger("agent_runtime.event_bus")


class SafePublisher:
    """Wraps a bus: ``publish`` returns False instead of raising; ``publish_nowait`` runs in the background.

    Background publishes are bounded by ``max_pending``; past it an event is counted as lost at once
    rather than queued without limit.
    """

    def __init__(
        self,
        bus: EventBus,
        *,
        max_pending: int = 1_000,
        timeout_s: float = 5.0,
        on_lost: Callable[[Event, BaseException | None], None] | None = None,
        on_published: Callable[[Event], None] | None = None,
    ) -> None:
        self.bus = bus
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self.on_lost = on_lost
        self.on_published = on_published
        self.published = 0
        self.lost = 0
        self._pending: dict[asyncio.Task[bool], Event] = {}

    async def publish(self, event: Event) -> bool:
        """Publish within ``timeout_s``; True if stored, False (counted, logged) otherwise."""
        try:
            await asyncio.wait_for(self.bus.publish(event), self.timeout_s)
        except Exception as exc:  # the caller's run must go on whatever the bus did
            self._lose(event, exc)
            return False
        self.published += 1
        if self.on_published is not None:
            self.on_published(event)
        return True

    def publish_nowait(self, event: Event) -> None:
        """Publish in the background; the caller does not wait for the bus at all."""
        if len(self._pending) >= self.max_pending:
            self._lose(event, None)
            return
        task = asyncio.get_running_loop().create_task(self.publish(event))
        self._pending[task] = event
        task.add_done_callback(self._forget)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self, timeout: float | None = None) -> None:
        """Wait (bounded) for background publishes to finish."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)

    async def aclose(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout``, default ``timeout_s``: no publish takes longer), then count whatever
        is still pending as lost. The bus itself is left open: close it after this."""
        await self.flush(self.timeout_s if timeout is None else timeout)
        stuck = dict(self._pending)
        for task, event in stuck.items():
            task.cancel()
            self._lose(event, None, "shut down before the bus took it")
        await asyncio.gather(*stuck, return_exceptions=True)

    def _forget(self, task: asyncio.Task[bool]) -> None:
        self._pending.pop(task, None)

    def _lose(self, event: Event, exc: BaseException | None, why: str = "backlog full") -> None:
        self.lost += 1
        reason = why if exc is None else f"{type(exc).__name__}: {exc}"
        log.warning("event %s (%s) lost: %s", event.id, event.type, reason)
        if self.on_lost is not None:
            try:
                self.on_lost(event, exc)
            except Exception:  # a broken metrics hook must not break publishing
                log.exception("on_lost hook failed")
