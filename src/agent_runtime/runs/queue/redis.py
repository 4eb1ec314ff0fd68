"""The run queue on Redis Streams with one consumer group shared by every worker of the fleet.

Keys (``ar`` is the key prefix)::

    ar:{runq}:stream     stream   one entry per queued run: run_id, tenant
    group ``workers``    on it; each worker is a consumer named by its worker id (``host:pid``)

``put`` is one script: ``XADD`` unless the stream already holds ``max_queued`` entries (a bounded
queue, refused with ``QueueFullError``). ``take`` reads new entries with ``XREADGROUP`` and, every
``scan_s``, takes over with ``XAUTOCLAIM`` the entries that stayed idle in another consumer's
pending-entries list for longer than ``lease_s``: their worker died. A live worker keeps the entries
it holds from going idle with ``touch`` (``XCLAIM ... JUSTID`` to itself, the heartbeat). ``ack`` is
``XACK`` + ``XDEL``, so the stream's length is what is waiting or in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from agent_runtime._redis import make_redis, redis_errors
from agent_runtime.runs.queue.base import Delivery, RunQueue
from agent_runtime.runs.record import Run
from agent_runtime.settings import RedisSettings

__all__ = ["RedisRunQueue"]

GROUP = "workers"
_PUT = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], '*', 'run_id', ARGV[2], 'tenant', ARGV[3])
"""


class RedisRunQueue(RunQueue):
    """Args:
    consumer: this worker's consumer name in the group.
    lease_s: idle time after which another worker's entry is taken over.
    scan_s: how often ``take`` looks for such entries.
    """

    def __init__(
        self,
        url: str,
        settings: RedisSettings | None = None,
        *,
        consumer: str,
        max_queued: int = 1000,
        lease_s: float = 30.0,
        scan_s: float = 1.0,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_queued=max_queued)
        cfg = settings or RedisSettings()
        self._redis = client if client is not None else make_redis(url, cfg)
        self._owns_client = client is None
        self._stream = f"{cfg.key_prefix}:{{runq}}:stream"
        self._block_ms = max(1, int(min(1.0, cfg.socket_timeout / 2) * 1000))  # under the socket timeout
        self.consumer = consumer
        self.lease_s = lease_s
        self.scan_s = scan_s
        self._clock = clock
        self._put = self._redis.register_script(_PUT)
        self._group_ready = False
        self._claimed_at: float | None = None

    async def _group(self) -> None:
        if self._group_ready:
            return
        try:  # from id 0: entries queued before the group existed are delivered too
            await self._redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def put(self, run: Run) -> None:
        async with redis_errors("run_queue.put"):
            await self._group()
            added = await self._put(keys=[self._stream], args=[self.max_queued, run.run_id, run.tenant])
        if not added:
            raise self._full()

    def _lost_group(self, exc: ResponseError) -> None:
        """The stream was deleted (FLUSHALL, a restored backup): make the group again next time."""
        if "NOGROUP" not in str(exc):
            raise exc
        self._group_ready = False

    async def take(self, limit: int, timeout_s: float) -> list[Delivery]:
        async with redis_errors("run_queue.take"):
            try:
                return await self._take(limit, timeout_s)
            except ResponseError as exc:
                self._lost_group(exc)
                return []

    async def _take(self, limit: int, timeout_s: float) -> list[Delivery]:
        await self._group()
        if self._claimed_at is None or self._clock() - self._claimed_at >= self.scan_s:
            self._claimed_at = self._clock()
            taken = await self._autoclaim(limit)
            if taken:
                return taken
        block = max(1, min(self._block_ms, int(timeout_s * 1000)))
        answer = await self._redis.xreadgroup(
            GROUP, self.consumer, {self._stream: ">"}, count=limit, block=block if timeout_s > 0 else None
        )
        return [_delivery(entry_id, fields) for _, entries in answer or () for entry_id, fields in entries]

    async def _autoclaim(self, limit: int) -> list[Delivery]:
        """Entries idle past the lease in any consumer's pending list (their worker died)."""
        idle_ms = int(self.lease_s * 1000)
        answer = await self._redis.xautoclaim(self._stream, GROUP, self.consumer, idle_ms, "0-0", count=limit)
        entries = answer[1] if len(answer) > 1 else []
        return [_delivery(entry_id, fields) for entry_id, fields in entries if fields]

    async def ack(self, delivery: Delivery) -> None:
        if delivery.token is None:
            return
        async with redis_errors("run_queue.ack"), self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self._stream, GROUP, delivery.token)
            pipe.xdel(self._stream, delivery.token)
            await pipe.execute()

    async def touch(self, deliveries: Sequence[Delivery]) -> None:
        tokens = [d.token for d in deliveries if d.token is not None]
        if tokens:
            async with redis_errors("run_queue.touch"):
                try:
                    await self._redis.xclaim(self._stream, GROUP, self.consumer, 0, tokens, justid=True)
                except ResponseError as exc:
                    self._lost_group(exc)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Each entry is queued again as a new one (no bound: it was admitted once) and the old one dropped."""
        if not deliveries:
            return
        async with redis_errors("run_queue.release"), self._redis.pipeline(transaction=True) as pipe:
            for delivery in deliveries:
                pipe.xadd(self._stream, {"run_id": delivery.run_id, "tenant": delivery.tenant})
                if delivery.token is not None:
                    pipe.xack(self._stream, GROUP, delivery.token)
                    pipe.xdel(self._stream, delivery.token)
            await pipe.execute()

    async def depth(self) -> int:
        async with redis_errors("run_queue.depth"):
            await self._group()
            length = await self._redis.xlen(self._stream)
            try:
                pending = await self._redis.xpending(self._stream, GROUP)
            except ResponseError as exc:
                self._lost_group(exc)
                pending = {}
        return max(0, int(length) - int(pending.get("pending", 0) if isinstance(pending, dict) else 0))

    async def ping(self) -> None:
        async with redis_errors("run_queue.ping"):
            await self._redis.ping()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose(close_connection_pool=True)


def _delivery(entry_id: Any, fields: dict[str, Any]) -> Delivery:
    return Delivery(str(fields["run_id"]), str(fields.get("tenant", "")), token=str(entry_id))
