"""Redis Streams event bus: one stream per bus namespace, one Redis consumer group per bus group.

Layout: every event goes to ``<prefix>:events:<namespace>`` as ``{t: type, e: json}`` (XADD with
``MAXLEN ~ maxlen``), so a group reads one stream in publish order and filters types client-side;
dead letters go to ``<stream>:dlq`` (also trimmed). One stream per namespace rather than per type
keeps ordering across types and makes ``pattern`` subscriptions trivial.

Delivery: XREADGROUP ``>`` hands new entries to one consumer of the group; the loop XACKs them once
handled. Entries left pending by a consumer that died are taken over with XAUTOCLAIM after
``claim_min_idle_s``; their delivery count (XPENDING) counts toward ``max_attempts``, so an event
that kills every consumer still ends in the dead-letter stream. At-least-once: a crash between
handling and XACK redelivers; trimming by MAXLEN can drop entries nobody read yet (size it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from agent_runtime._redis import check_key_part, make_redis, redis_errors
from agent_runtime.errors import ValidationError
from agent_runtime.event_bus.base import ConsumerLoop, ConsumerSpec, DeadLetter, Delivery, EventBus, parse_dead_letter
from agent_runtime.event_bus.dedupe import DedupeStore
from agent_runtime.event_bus.events import Event
from agent_runtime.settings import RedisSettings

__all__ = ["RedisDedupe", "RedisEventBus"]


class _RedisConsumer(ConsumerLoop):
    def __init__(self, spec: ConsumerSpec, bus: RedisEventBus) -> None:
        super().__init__(spec)
        self._bus = bus
        self._redis = bus.redis
        self._next_claim = time.monotonic()
        self._claim_cursor = "0-0"

    async def fetch(self) -> Sequence[Delivery]:
        if time.monotonic() >= self._next_claim:
            claimed = await self._claim()
            if claimed:
                return claimed
        async with redis_errors("events.read"):
            resp = await self._redis.xreadgroup(
                self.spec.group,
                self.spec.consumer,
                {self._bus.stream: ">"},
                count=self.spec.batch_size,
                block=self._bus.block_ms,
            )
        return [_delivery(entry_id, fields) for _, entries in resp or () for entry_id, fields in entries if fields]

    async def _claim(self) -> list[Delivery]:
        """Take over entries another consumer left pending longer than ``claim_min_idle_s``."""
        bus, spec = self._bus, self.spec
        async with redis_errors("events.claim"):
            resp = await self._redis.xautoclaim(
                bus.stream,
                spec.group,
                spec.consumer,
                min_idle_time=int(bus.claim_min_idle_s * 1000),
                start_id=self._claim_cursor,
                count=spec.batch_size,
            )
            self._claim_cursor = resp[0]
            if self._claim_cursor == "0-0":  # scanned the whole pending list: wait before the next pass
                self._next_claim = time.monotonic() + bus.claim_interval_s
            live = [(entry_id, fields) for entry_id, fields in resp[1] if entry_id and fields]
            gone = list(resp[2]) if len(resp) > 2 else []
            gone += [entry_id for entry_id, fields in resp[1] if entry_id and not fields]
            if gone:  # trimmed away by MAXLEN while pending: nothing left to deliver
                await self._redis.xack(bus.stream, spec.group, *gone)
            if not live:
                return []
            pending = await self._redis.xpending_range(
                bus.stream, spec.group, min=live[0][0], max=live[-1][0], count=len(live) * 4, consumername=spec.consumer
            )
        counts = {row["message_id"]: int(row["times_delivered"]) for row in pending}
        return [_delivery(entry_id, fields, max(0, counts.get(entry_id, 1) - 1)) for entry_id, fields in live]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        async with redis_errors("events.ack"):
            await self._redis.xack(self._bus.stream, self.spec.group, *(d.token for d in deliveries))

    async def dead_letter(self, delivery: Delivery, error: str, attempts: int) -> None:
        fields = {
            "e": delivery.raw,
            "group": self.spec.group,
            "error": error,
            "attempts": attempts,
            "id": delivery.token,
        }
        async with redis_errors("events.dead_letter"):
            await self._redis.xadd(self._bus.dlq, fields, maxlen=self._bus.dlq_maxlen, approximate=True)

    async def close(self, *, graceful: bool) -> None:
        if not graceful:
            return
        # Forget this consumer's name only when it holds nothing pending, so nothing is orphaned.
        async with redis_errors("events.close"):
            info = await self._redis.xpending_range(
                self._bus.stream, self.spec.group, min="-", max="+", count=1, consumername=self.spec.consumer
            )
            if not info:
                await self._redis.xgroup_delconsumer(self._bus.stream, self.spec.group, self.spec.consumer)


def _delivery(entry_id: str, fields: dict[str, str], prior_attempts: int = 0) -> Delivery:
    return Delivery(fields.get("e", ""), fields.get("t", ""), entry_id, prior_attempts)


class RedisEventBus(EventBus):
    """Event bus on Redis Streams (see the module docstring for layout and delivery guarantees)."""

    backend = "redis"
    default_batch_size = 16

    def __init__(
        self,
        url: str,
        *,
        redis_settings: RedisSettings | None = None,
        namespace: str = "default",
        maxlen: int = 100_000,
        dlq_maxlen: int = 10_000,
        block_ms: int = 1_000,
        claim_min_idle_s: float = 30.0,
        claim_interval_s: float | None = None,
    ) -> None:
        super().__init__()
        cfg = redis_settings or RedisSettings()
        if block_ms >= cfg.socket_timeout * 1000:
            raise ValidationError("block_ms must be shorter than the Redis socket timeout")
        self.redis: Any = make_redis(url, cfg)
        self.stream = f"{cfg.key_prefix}:events:{check_key_part(namespace, 'namespace')}"
        self.dlq = f"{self.stream}:dlq"
        self.maxlen = maxlen
        self.dlq_maxlen = dlq_maxlen
        self.block_ms = block_ms
        self.claim_min_idle_s = claim_min_idle_s
        self.claim_interval_s = claim_interval_s if claim_interval_s is not None else max(0.1, claim_min_idle_s / 2)

    async def publish(self, event: Event) -> None:
        self._check_open()
        raw = self._encode(event)
        async with redis_errors("events.publish"):
            await self.redis.xadd(self.stream, {"t": event.type, "e": raw}, maxlen=self.maxlen, approximate=True)

    async def publish_many(self, events: Iterable[Event]) -> None:
        """One pipelined round trip for the whole batch (not a transaction: each XADD stands alone)."""
        self._check_open()
        encoded = [(event.type, self._encode(event)) for event in events]
        async with redis_errors("events.publish"):
            pipe = self.redis.pipeline(transaction=False)
            for event_type, raw in encoded:
                pipe.xadd(self.stream, {"t": event_type, "e": raw}, maxlen=self.maxlen, approximate=True)
            await pipe.execute()

    async def _open_consumer(self, spec: ConsumerSpec) -> ConsumerLoop:
        from redis.exceptions import ResponseError

        async with redis_errors("events.subscribe"):
            try:
                await self.redis.xgroup_create(
                    self.stream, spec.group, id="$" if spec.start == "latest" else "0", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        return _RedisConsumer(spec, self)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        async with redis_errors("events.dead_letters"):
            rows = await self.redis.xrevrange(self.dlq, count=limit)
        return [
            parse_dead_letter(f.get("e", ""), f.get("group", ""), f.get("error", ""), int(f.get("attempts", 0)))
            for _, f in reversed(rows)
        ]

    async def ping(self) -> None:
        async with redis_errors("events.ping"):
            await self.redis.ping()

    async def _close(self) -> None:
        await self.redis.aclose()


class RedisDedupe(DedupeStore):
    """Processed-event marks shared by every worker: ``SET key 1 EX ttl`` per event id."""

    def __init__(
        self, redis: Any, *, namespace: str = "default", ttl_s: float = 86_400, key_prefix: str = "ar"
    ) -> None:
        self._redis = redis
        self._prefix = f"{key_prefix}:events:{check_key_part(namespace, 'namespace')}:seen:"
        self._ttl_ms = int(ttl_s * 1000)

    async def seen(self, key: str) -> bool:
        async with redis_errors("events.dedupe"):
            found = await self._redis.exists(self._prefix + check_key_part(key, "dedupe key"))
        return bool(found)

    async def mark(self, key: str) -> None:
        async with redis_errors("events.dedupe"):
            await self._redis.set(self._prefix + check_key_part(key, "dedupe key"), "1", px=self._ttl_ms)
