"""In-process event bus: the default for one process, tests and development.

Each consumer group owns a bounded FIFO queue; ``publish`` puts the event into the queue of every
group whose subscriptions want its type, and the group's consumers take turns on that queue, so a
group sees each event once and its consumers share the load.

Overflow policy: back-pressure, never silent loss. When a group's queue is full, ``publish`` waits
up to ``publish_timeout_s`` for room and then raises ``BackendError`` (counted in ``overflows``);
callers that must not fail wrap the bus in ``SafePublisher``, which counts the event as lost.
The queues hold no history: a group only receives events published after it subscribed
(``start="earliest"`` means the same here), and nothing survives the process. As on Redis and
Kafka, a group outlives its subscriptions and keeps collecting events until its queue is full;
``drop_group`` forgets a group that will not come back.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence

from agent_runtime.errors import BackendError, ValidationError
from agent_runtime.event_bus.base import (
    ConsumerLoop,
    ConsumerSpec,
    DeadLetter,
    Delivery,
    EventBus,
    EventFilter,
    parse_dead_letter,
)
from agent_runtime.event_bus.events import Event

__all__ = ["MemoryEventBus"]


class _GroupQueue:
    """A bounded FIFO that several consumers read and that a crashed consumer can refill at the front."""

    def __init__(self, maxsize: int) -> None:
        self.items: deque[Delivery] = deque()
        self.maxsize = maxsize
        self.filters: list[EventFilter] = []
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def wants(self, event_type: str) -> bool:
        return any(flt.matches(event_type) for flt in self.filters)

    async def put(self, delivery: Delivery, deadline: float) -> None:
        while len(self.items) >= self.maxsize:
            self._writable.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            await asyncio.wait_for(self._writable.wait(), remaining)
        self.items.append(delivery)
        self._readable.set()

    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        """Put deliveries back at the front: they were taken first, so they go out first again."""
        self.items.extendleft(reversed(deliveries))
        if self.items:
            self._readable.set()

    def take(self, limit: int) -> list[Delivery]:
        batch = [self.items.popleft() for _ in range(min(limit, len(self.items)))]
        if not self.items:
            self._readable.clear()
        if len(self.items) < self.maxsize:
            self._writable.set()
        return batch

    async def wait_readable(self) -> None:
        await self._readable.wait()


class _MemoryConsumer(ConsumerLoop):
    def __init__(self, spec: ConsumerSpec, queue: _GroupQueue, bus: MemoryEventBus) -> None:
        super().__init__(spec)
        self._queue = queue
        self._bus = bus
        self._inflight: dict[int, Delivery] = {}

    def poll_ready(self) -> Sequence[Delivery]:
        batch = self._queue.take(self.spec.batch_size)
        self._inflight.update((d.token, d) for d in batch)
        return batch

    async def fetch(self) -> Sequence[Delivery]:
        while True:
            await self._queue.wait_readable()
            if batch := self.poll_ready():
                return batch

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._inflight.pop(delivery.token, None)

    async def dead_letter(self, delivery: Delivery, error: str, attempts: int) -> None:
        self._bus.dead.append(parse_dead_letter(delivery.raw, self.spec.group, error, attempts))

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._inflight.pop(delivery.token, None)
        self._queue.requeue(deliveries)

    async def close(self, *, graceful: bool) -> None:
        # A crashed consumer's unacked events go back to its group, counted as one more delivery.
        crashed = [_redelivered(d) for d in self._inflight.values()]
        self._inflight.clear()
        self._queue.requeue(crashed)


def _redelivered(delivery: Delivery) -> Delivery:
    return Delivery(delivery.raw, delivery.type, delivery.token, delivery.prior_attempts + 1)


class MemoryEventBus(EventBus):
    """Bounded in-process bus with consumer-group semantics (see the module docstring)."""

    backend = "memory"
    default_batch_size = 1  # taking one at a time keeps slow handlers of a group load-balanced

    def __init__(self, *, max_queue: int = 10_000, publish_timeout_s: float = 1.0, max_dead_letters: int = 1_000):
        super().__init__()
        if max_queue < 1:
            raise ValidationError("max_queue must be >= 1")
        self.max_queue = max_queue
        self.publish_timeout_s = publish_timeout_s
        self.dead: deque[DeadLetter] = deque(maxlen=max_dead_letters)
        self.overflows = 0
        """Publishes refused because a group's queue stayed full for ``publish_timeout_s``."""
        self._groups: dict[str, _GroupQueue] = {}
        self._seq = 0

    async def publish(self, event: Event) -> None:
        self._check_open()
        raw = self._encode(event)
        deadline = time.monotonic() + self.publish_timeout_s
        for name, queue in list(self._groups.items()):
            if not queue.wants(event.type):
                continue
            self._seq += 1
            try:
                await queue.put(Delivery(raw, event.type, self._seq), deadline)
            except TimeoutError:
                self.overflows += 1
                raise BackendError(
                    f"event queue of group {name!r} full ({self.max_queue}) for {self.publish_timeout_s}s",
                    details={"group": name, "event_id": event.id},
                ) from None

    async def _open_consumer(self, spec: ConsumerSpec) -> ConsumerLoop:
        queue = self._groups.get(spec.group)
        if queue is None:
            queue = self._groups[spec.group] = _GroupQueue(self.max_queue)
        if spec.filter not in queue.filters:
            queue.filters.append(spec.filter)
        return _MemoryConsumer(spec, queue, self)

    def queued(self, group: str) -> int:
        """Events waiting in ``group``'s queue (not counting those being handled)."""
        queue = self._groups.get(group)
        return len(queue.items) if queue else 0

    def drop_group(self, group: str) -> None:
        """Forget ``group`` and its queued events (its consumers should be stopped first)."""
        self._groups.pop(group, None)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return list(self.dead)[-limit:]

    async def ping(self) -> None:
        self._check_open()
