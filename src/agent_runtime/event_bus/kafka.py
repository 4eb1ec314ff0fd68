"""Kafka event bus (aiokafka): one topic per bus namespace, ``<topic>.dlq`` for dead letters.

Producer: ``acks="all"`` and, by default, the idempotent producer, so a retried send is not
duplicated in the log. Events are keyed by run id (else correlation id, else event id), so one run's
events stay in order on one partition. Topics are created through the admin client if missing.

Consumers: one ``AIOKafkaConsumer`` per consumer, ``enable_auto_commit=False``; offsets are committed
after the handler finished (per fetched batch). A group is load-balanced by partition, so at most
``partitions`` consumers of a group do work. When a group has no committed offset for a partition
it is given one at assignment (the current end for ``start="latest"``), so a partition that moves to
another consumer before anything was committed is resumed, not skipped. Kafka keeps no delivery
count: an event whose handler kills the process every time is redelivered until a consumer survives
it; handler exceptions are retried and dead-lettered as on every backend.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from agent_runtime.errors import BackendError, ValidationError
from agent_runtime.event_bus.base import ConsumerLoop, ConsumerSpec, DeadLetter, Delivery, EventBus, parse_dead_letter
from agent_runtime.event_bus.events import Event

__all__ = ["KafkaEventBus", "kafka_errors"]

_TOPIC_PART = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@contextlib.asynccontextmanager
async def kafka_errors(operation: str) -> AsyncIterator[None]:
    """Turn aiokafka / socket failures into ``BackendError``."""
    try:
        yield
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BackendError(f"kafka unavailable during {operation}: {type(exc).__name__}") from exc


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]
    """Rebalance listener: gives partitions without a committed offset one, and signals the first join."""

    def __init__(self, consumer: Any, start: str) -> None:
        self.consumer = consumer
        self.start = start
        self.joined = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        try:
            missing = [tp for tp in assigned if await self.consumer.committed(tp) is None]
            if missing:
                if self.start == "latest":
                    offsets = await self.consumer.end_offsets(missing)
                else:
                    offsets = await self.consumer.beginning_offsets(missing)
                await self.consumer.commit(offsets)
        finally:
            self.joined.set()


class _KafkaConsumer(ConsumerLoop):
    def __init__(self, spec: ConsumerSpec, bus: KafkaEventBus, consumer: Any) -> None:
        super().__init__(spec)
        self._bus = bus
        self._consumer = consumer

    async def fetch(self) -> Sequence[Delivery]:
        async with kafka_errors("events.read"):
            batches = await self._consumer.getmany(
                timeout_ms=self._bus.poll_timeout_ms, max_records=self.spec.batch_size
            )
        return [_delivery(msg) for msgs in batches.values() for msg in msgs]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        offsets: dict[Any, int] = {}
        for delivery in deliveries:
            tp, offset = delivery.token
            offsets[tp] = max(offsets.get(tp, 0), offset + 1)
        async with kafka_errors("events.commit"):
            await self._consumer.commit(offsets)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Seek back so unacked offsets are fetched again (a later commit would otherwise skip them)."""
        first: dict[Any, int] = {}
        for delivery in deliveries:
            tp, offset = delivery.token
            first[tp] = min(first.get(tp, offset), offset)
        for tp, offset in first.items():
            with contextlib.suppress(Exception):  # partition revoked meanwhile: its new owner resumes it
                self._consumer.seek(tp, offset)

    async def dead_letter(self, delivery: Delivery, error: str, attempts: int) -> None:
        headers = [("group", self.spec.group.encode()), ("error", error.encode()), ("attempts", str(attempts).encode())]
        producer = await self._bus.producer()
        async with kafka_errors("events.dead_letter"):
            await producer.send_and_wait(self._bus.dlq_topic, delivery.raw.encode(), headers=headers)

    async def close(self, *, graceful: bool) -> None:
        # Auto-commit is off, so stopping commits nothing: an abort leaves unacked offsets to the group.
        await self._consumer.stop()


def _delivery(msg: Any) -> Delivery:
    headers = dict(msg.headers or ())
    event_type = headers.get("type", b"").decode()
    return Delivery(msg.value.decode(), event_type, (_tp(msg.topic, msg.partition), msg.offset))


def _tp(topic: str, partition: int) -> Any:
    return TopicPartition(topic, partition)


class KafkaEventBus(EventBus):
    """Event bus on Kafka (see the module docstring)."""

    backend = "kafka"
    default_batch_size = 100

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        namespace: str = "default",
        topic_prefix: str = "agent_runtime",
        partitions: int = 4,
        idempotent: bool = True,
        request_timeout_ms: int = 5_000,
        poll_timeout_ms: int = 500,
        join_timeout_s: float = 30.0,
        consumer_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not set(namespace) <= _TOPIC_PART or not set(topic_prefix) <= _TOPIC_PART:
            raise ValidationError("namespace and topic_prefix may hold only letters, digits, '.', '_' and '-'")
        self.bootstrap_servers = bootstrap_servers
        self.topic = f"{topic_prefix}.events.{namespace}"
        self.dlq_topic = f"{self.topic}.dlq"
        self.partitions = partitions
        self.idempotent = idempotent
        self.request_timeout_ms = request_timeout_ms
        self.poll_timeout_ms = poll_timeout_ms
        self.join_timeout_s = join_timeout_s
        self.consumer_options = consumer_options or {}
        self._producer: Any = None
        self._topics_ready = False
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Create the topics if missing and start the producer (publish does this on first use)."""
        await self.producer()

    async def producer(self) -> Any:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                self._check_open()
                await self._ensure_topics()
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap_servers,
                    acks="all",
                    enable_idempotence=self.idempotent,
                    request_timeout_ms=self.request_timeout_ms,
                )
                async with kafka_errors("events.connect"):
                    try:
                        await producer.start()
                    except BaseException:
                        await producer.stop()
                        raise
                self._producer = producer
        return self._producer

    async def _ensure_topics(self) -> None:
        if self._topics_ready:
            return
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, request_timeout_ms=self.request_timeout_ms
        )
        async with kafka_errors("events.create_topics"):
            await admin.start()
            try:
                existing = set(await admin.list_topics())
                wanted = [name for name in (self.topic, self.dlq_topic) if name not in existing]
                if wanted:
                    resp = await admin.create_topics([NewTopic(n, self.partitions, 1) for n in wanted])
                    errors = [(t, code) for t, code, *_ in resp.topic_errors if code not in (0, 36)]  # 36: exists
                    if errors:
                        raise BackendError(f"kafka refused to create topics: {errors}")
            finally:
                await admin.close()
        self._topics_ready = True

    async def publish(self, event: Event) -> None:
        self._check_open()
        raw = self._encode(event)
        producer = await self.producer()
        async with kafka_errors("events.publish"):
            await producer.send_and_wait(self.topic, raw.encode(), key=_key(event), headers=_headers(event))

    async def publish_many(self, events: Iterable[Event]) -> None:
        """Queue every send, then wait for all acks: the producer batches them per partition."""
        self._check_open()
        encoded = [(event, self._encode(event).encode()) for event in events]
        producer = await self.producer()
        async with kafka_errors("events.publish"):
            futures = [
                await producer.send(self.topic, raw, key=_key(event), headers=_headers(event)) for event, raw in encoded
            ]
            await asyncio.gather(*futures)

    async def _open_consumer(self, spec: ConsumerSpec) -> ConsumerLoop:
        await self._ensure_topics()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=spec.group,
            client_id=spec.consumer,
            enable_auto_commit=False,
            auto_offset_reset=spec.start,
            request_timeout_ms=max(self.request_timeout_ms, 40_000),
            **self.consumer_options,
        )
        listener = _Assignments(consumer, spec.start)
        async with kafka_errors("events.subscribe"):
            try:
                await consumer.start()
                consumer.subscribe([self.topic], listener=listener)
                await asyncio.wait_for(listener.joined.wait(), self.join_timeout_s)
            except BaseException:
                await consumer.stop()
                raise
        return _KafkaConsumer(spec, self, consumer)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        await self._ensure_topics()
        reset = {"auto_offset_reset": "earliest"}  # a "latest" reset racing seek_to_beginning could win
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, **reset)
        letters: list[DeadLetter] = []
        async with kafka_errors("events.dead_letters"):
            await consumer.start()
            try:
                tps = [_tp(self.dlq_topic, p) for p in sorted(await _partitions(consumer, self.dlq_topic))]
                consumer.assign(tps)
                ends = await consumer.end_offsets(tps)
                for tp, offset in (await consumer.beginning_offsets(tps)).items():
                    consumer.seek(tp, offset)
                while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                    for msgs in (await consumer.getmany(timeout_ms=self.poll_timeout_ms)).values():
                        letters.extend(_dead_letter(msg) for msg in msgs)
            finally:
                await consumer.stop()
        return letters[-limit:]

    async def ping(self) -> None:
        producer = await self.producer()
        async with kafka_errors("events.ping"):
            await producer.partitions_for(self.topic)

    async def _close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


async def _partitions(consumer: Any, topic: str) -> set[int]:
    """The topic's partitions; metadata can lag a moment behind a topic that exists, so ask again."""
    for _ in range(50):
        await consumer.topics()  # refreshes metadata
        if found := consumer.partitions_for_topic(topic):
            return set(found)
        await asyncio.sleep(0.1)
    raise BackendError(f"kafka has no metadata for topic {topic}")


def _key(event: Event) -> bytes:
    return (event.run_id or event.correlation_id or event.id).encode()


def _headers(event: Event) -> list[tuple[str, bytes]]:
    return [("type", event.type.encode())]


def _dead_letter(msg: Any) -> DeadLetter:
    headers = {k: v.decode() for k, v in msg.headers or ()}
    return parse_dead_letter(
        msg.value.decode(), headers.get("group", ""), headers.get("error", ""), int(headers.get("attempts", "0"))
    )
