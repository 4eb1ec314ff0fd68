"""The ``EventBus`` seam and the consumer loop every backend shares.

A backend supplies three things: how to publish, how a consumer fetches a batch, and how it
acknowledges / dead-letters. The loop here does the rest, identically everywhere:

* a handler returning normally acks the event; raising retries it in place with exponential
  backoff; after ``max_attempts`` the event goes to the dead-letter stream and is acked, so the
  consumer keeps going;
* deliveries a backend knows were tried before (a consumer died holding them) count toward
  ``max_attempts``, so an event that crashes every consumer is dead-lettered too;
* ``stop()`` lets the in-flight handler finish, acks what was handled, and hands back what was
  fetched but not started; ``abort()`` simulates a crash: nothing more is acked.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent_runtime._redis import check_key_part
from agent_runtime.errors import AgentRuntimeError, ValidationError
from agent_runtime.event_bus.events import MAX_EVENT_BYTES, Event

__all__ = [
    "ConsumerLoop",
    "ConsumerSpec",
    "ConsumerStats",
    "DeadLetter",
    "Delivery",
    "EventBus",
    "EventFilter",
    "Handler",
    "RetryPolicy",
    "StartFrom",
    "Subscription",
]

log = logging.getLogger("agent_runtime.event_bus")

Handler = Callable[[Event], Awaitable[None]]
StartFrom = Literal["latest", "earliest"]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a failing handler is retried before dead-lettering."""

    max_attempts: int = 5
    backoff_s: float = 0.2
    max_backoff_s: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValidationError("max_attempts must be >= 1 and backoff times >= 0")

    def delay(self, attempt: int) -> float:
        """Backoff after failed attempt ``attempt`` (1-based): exponential, capped, +-20% jitter."""
        base = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return float(base * random.uniform(0.8, 1.2))


@dataclass(frozen=True)
class EventFilter:
    """Which event types a subscription wants: an explicit set, a glob (``run.*``), or all."""

    types: frozenset[str] | None = None
    pattern: str | None = None

    def matches(self, event_type: str) -> bool:
        if self.types is not None and event_type not in self.types:
            return False
        return self.pattern is None or fnmatch.fnmatchcase(event_type, self.pattern)


@dataclass(frozen=True)
class Delivery:
    """One fetched event, with the backend's handle to ack it and how often it was tried before."""

    raw: str
    type: str
    token: Any
    prior_attempts: int = 0
    event: Event | None = None
    """Already-parsed envelope, when the backend has one; otherwise ``raw`` is parsed."""


@dataclass(frozen=True)
class DeadLetter:
    """An event that failed ``attempts`` times in ``group`` (``event`` is None if it did not parse)."""

    raw: str
    group: str
    error: str
    attempts: int
    event: Event | None = None


@dataclass(frozen=True, kw_only=True)
class ConsumerSpec:
    group: str
    consumer: str
    handler: Handler
    filter: EventFilter
    retry: RetryPolicy
    start: StartFrom
    batch_size: int
    on_count: Callable[[str], None] | None = None
    """Told ``consumed`` / ``dead_lettered`` for each event (metrics)."""


@dataclass
class ConsumerStats:
    handled: int = 0
    failed_attempts: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    """Events of other types, acked without calling the handler."""


class ConsumerLoop(ABC):
    """One consumer of a group. Backends implement fetch/ack/dead_letter; ``run`` is shared."""

    def __init__(self, spec: ConsumerSpec) -> None:
        self.spec = spec
        self.stats = ConsumerStats()
        self.in_handler = False

    @abstractmethod
    async def fetch(self) -> Sequence[Delivery]:
        """Wait for the next batch (may return an empty batch after a poll timeout)."""

    def poll_ready(self) -> Sequence[Delivery]:
        """Deliveries available without waiting; lets in-process backends skip the wait machinery."""
        return ()

    @abstractmethod
    async def ack(self, deliveries: Sequence[Delivery]) -> None: ...

    @abstractmethod
    async def dead_letter(self, delivery: Delivery, error: str, attempts: int) -> None:
        """Store the event in the dead-letter stream; the loop acks it afterwards."""

    async def release(self, deliveries: Sequence[Delivery]) -> None:  # noqa: B027 - optional hook
        """Give back fetched-but-unstarted deliveries at shutdown (brokers redeliver them anyway)."""

    @abstractmethod
    async def close(self, *, graceful: bool) -> None:
        """Release connections; ``graceful=False`` must not ack anything (crash semantics)."""

    async def run(self, stopping: asyncio.Event) -> None:
        stop_waiter = asyncio.ensure_future(stopping.wait())
        try:
            while not stopping.is_set():
                batch = self.poll_ready() or await self._fetch_or_stop(stop_waiter)
                if batch is None:
                    return
                await self._handle_batch(batch, stopping)
        finally:
            stop_waiter.cancel()

    async def _fetch_or_stop(self, stop_waiter: asyncio.Future[Any]) -> Sequence[Delivery] | None:
        fetch = asyncio.ensure_future(self.fetch())
        await asyncio.wait({fetch, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not fetch.done():
            fetch.cancel()
            await asyncio.wait({fetch})
        if fetch.cancelled():
            return None
        if (exc := fetch.exception()) is not None:
            await self._backend_trouble("fetch", exc)
            return ()
        batch = fetch.result()
        if stop_waiter.done():
            await self.release(batch)
            return None
        return batch

    async def _handle_batch(self, batch: Sequence[Delivery], stopping: asyncio.Event) -> None:
        done: list[Delivery] = []
        for index, delivery in enumerate(batch):
            if stopping.is_set() or not await self._process(delivery, stopping):
                await self.release(batch[index:])
                break
            done.append(delivery)
        if done:
            try:
                await self.ack(done)
            except Exception as exc:  # unacked events are redelivered: at-least-once holds
                await self._backend_trouble("ack", exc)

    async def _process(self, delivery: Delivery, stopping: asyncio.Event) -> bool:
        """Run the handler with retries; True when the delivery may be acked."""
        if not self.spec.filter.matches(delivery.type):
            self.stats.skipped += 1
            return True
        retry = self.spec.retry
        try:
            event = delivery.event or Event.from_json(delivery.raw)
        except ValidationError as exc:
            return await self._dead_letter(delivery, str(exc), delivery.prior_attempts)
        attempt = delivery.prior_attempts
        error = "delivered too often (consumers died while handling it)"
        while attempt < retry.max_attempts:
            attempt += 1
            self.in_handler = True
            try:
                await self.spec.handler(event)
            except Exception as exc:
                self.stats.failed_attempts += 1
                error = f"{type(exc).__name__}: {exc}"[:2000]
                log.warning("handler failed", extra={"group": self.spec.group, "event_id": event.id, "try": attempt})
            else:
                self.stats.handled += 1
                self._count("consumed")
                return True
            finally:
                self.in_handler = False
            if attempt < retry.max_attempts and await _sleep_or_stop(retry.delay(attempt), stopping):
                return False
        return await self._dead_letter(delivery, error, attempt)

    async def _dead_letter(self, delivery: Delivery, error: str, attempts: int) -> bool:
        try:
            await self.dead_letter(delivery, error, attempts)
        except Exception as exc:
            await self._backend_trouble("dead_letter", exc)
            return False
        self.stats.dead_lettered += 1
        self._count("dead_lettered")
        return True

    def _count(self, kind: str) -> None:
        if self.spec.on_count is not None:
            try:
                self.spec.on_count(kind)
            except Exception:  # metrics never break consumption
                log.exception("event count hook failed")

    async def _backend_trouble(self, operation: str, exc: BaseException) -> None:
        log.warning("event bus %s failed in group %s: %r", operation, self.spec.group, exc)
        await asyncio.sleep(0.5)


async def _sleep_or_stop(delay: float, stopping: asyncio.Event) -> bool:
    """Sleep ``delay`` seconds; True if stopping was requested meanwhile."""
    try:
        await asyncio.wait_for(stopping.wait(), delay)
    except TimeoutError:
        return False
    return True


class Subscription:
    """Handle on the consumers one ``subscribe`` started; stop it gracefully or abort it."""

    def __init__(self, group: str, loops: Sequence[ConsumerLoop]) -> None:
        self.group = group
        self.loops = list(loops)
        self._stopping = asyncio.Event()
        self._tasks = [asyncio.create_task(loop.run(self._stopping)) for loop in self.loops]
        self._closed = False

    @property
    def stats(self) -> ConsumerStats:
        total = ConsumerStats()
        for loop in self.loops:
            for name in vars(total):
                setattr(total, name, getattr(total, name) + getattr(loop.stats, name))
        return total

    @property
    def running(self) -> bool:
        return not self._closed and any(not task.done() for task in self._tasks)

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Finish in-flight handlers (up to ``timeout``), ack them, then close the consumers."""
        if self._closed:
            return
        self._stopping.set()
        _, pending = await asyncio.wait(self._tasks, timeout=timeout) if self._tasks else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close(graceful=not pending)

    async def abort(self) -> None:
        """Stop at once without acking anything, as if the process had died."""
        if self._closed:
            return
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close(graceful=False)

    async def _close(self, *, graceful: bool) -> None:
        self._closed = True
        for loop in self.loops:
            try:
                await loop.close(graceful=graceful)
            except Exception as exc:  # closing must never raise into shutdown paths
                log.warning("closing consumer %s failed: %r", loop.spec.consumer, exc)


class EventBus(ABC):
    """Publish / subscribe with consumer groups, at-least-once, retries and dead-lettering."""

    backend: str = "abstract"
    default_batch_size: int = 16

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._closed = False
        self.on_count: Callable[[str], None] | None = None
        """Set by the runtime to count consumed and dead-lettered events in its metrics."""

    @abstractmethod
    async def publish(self, event: Event) -> None:
        """Hand the event to the backend; returns once it is stored (raises ``BackendError``)."""

    async def publish_many(self, events: Iterable[Event]) -> None:
        """Publish several events; backends batch this into one round trip where they can."""
        for event in events:
            await self.publish(event)

    async def subscribe(
        self,
        group: str,
        handler: Handler,
        *,
        types: Iterable[str] | None = None,
        pattern: str | None = None,
        consumer_name: str | None = None,
        max_attempts: int = 5,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        concurrency: int = 1,
        start: StartFrom = "latest",
        batch_size: int | None = None,
    ) -> Subscription:
        """Start ``concurrency`` consumers of ``group`` calling ``handler`` for matching events.

        Each group sees every event once; the consumers of a group share its events. A group
        created here starts at the events published from now on (``start="latest"``) unless
        ``start="earliest"``. Returns once the consumers are ready to receive.
        """
        self._check_open()
        check_key_part(group, "consumer group")
        if concurrency < 1:
            raise ValidationError("concurrency must be >= 1")
        base_name = check_key_part(consumer_name or _default_consumer_name(), "consumer name")
        flt = EventFilter(frozenset(types) if types is not None else None, pattern)
        retry = RetryPolicy(max_attempts=max_attempts, backoff_s=backoff_s, max_backoff_s=max_backoff_s)
        specs = [
            ConsumerSpec(
                group=group,
                consumer=base_name if concurrency == 1 else f"{base_name}-{i}",
                handler=handler,
                filter=flt,
                retry=retry,
                start=start,
                batch_size=batch_size or self.default_batch_size,
                on_count=self.on_count,
            )
            for i in range(concurrency)
        ]
        loops = await asyncio.gather(*(self._open_consumer(spec) for spec in specs))
        subscription = Subscription(group, loops)
        self._subscriptions.append(subscription)
        return subscription

    @abstractmethod
    async def _open_consumer(self, spec: ConsumerSpec) -> ConsumerLoop: ...

    @abstractmethod
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The most recent dead-lettered events (for operators and tests)."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise ``BackendError`` unless the backend is reachable (for ``/readyz``)."""

    async def aclose(self, timeout: float = 30.0) -> None:
        """Stop every subscription gracefully (in-flight handlers finish), then release the backend."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(sub.stop(timeout) for sub in self._subscriptions))
        await self._close()

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Release backend clients."""

    def _check_open(self) -> None:
        if self._closed:
            raise AgentRuntimeError("event bus is closed")

    @staticmethod
    def _encode(event: Event) -> str:
        raw = event.to_json()
        if len(raw) > MAX_EVENT_BYTES:
            raise ValidationError(f"event {event.id} is larger than {MAX_EVENT_BYTES} bytes")
        return raw


def _default_consumer_name() -> str:
    import os
    import socket

    return f"{socket.gethostname()[:60]}-{os.getpid()}-{random.randrange(16**6):06x}"


def parse_dead_letter(raw: str, group: str, error: str, attempts: int) -> DeadLetter:
    """Build a ``DeadLetter``, keeping the raw text when the event itself does not parse."""
    try:
        event: Event | None = Event.from_json(raw)
    except ValidationError:
        event = None
    return DeadLetter(raw=raw, group=group, error=error, attempts=attempts, event=event)
