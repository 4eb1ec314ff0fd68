"""The run queue of the memory and SQLite backends: the run store's pending records plus a fair
in-process buffer.

``put`` buffers the run in this process (round-robin by tenant, bounded by ``max_queued``); every
``scan_s`` ``take`` also reads the store's pending records, so a restarted process (or another process
sharing the SQLite file) picks up what was left pending. Two processes may thus be handed the same
run: the record's compare-and-set lets exactly one of them execute it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from agent_runtime.runs.base import RunRecordStore
from agent_runtime.runs.queue.base import Delivery, RunQueue
from agent_runtime.runs.queue.fair import FairBuffer
from agent_runtime.runs.record import Run

__all__ = ["LocalRunQueue"]


class LocalRunQueue(RunQueue):
    """Args:
    store: whose pending records are the queue.
    scan_s: how often ``take`` looks for pending records it was not handed by ``put``.
    """

    def __init__(
        self,
        store: RunRecordStore,
        *,
        max_queued: int = 1000,
        scan_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_queued=max_queued)
        self.store = store
        self.scan_s = scan_s
        self._clock = clock
        self._buffer = FairBuffer()
        self._wake = asyncio.Event()
        self._scanned_at: float | None = None

    async def put(self, run: Run) -> None:
        if len(self._buffer) >= self.max_queued:
            raise self._full()
        self._buffer.push(Delivery(run.run_id, run.tenant))
        self._wake.set()

    async def take(self, limit: int, timeout_s: float) -> list[Delivery]:
        deadline = self._clock() + timeout_s
        while True:
            if self._scanned_at is None or self._clock() - self._scanned_at >= self.scan_s:
                await self._scan()
            taken = self._pop(limit)
            left = deadline - self._clock()
            if taken or left <= 0:
                return taken
            self._wake.clear()
            wait = min(left, self.scan_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _pop(self, limit: int) -> list[Delivery]:
        taken: list[Delivery] = []
        while len(taken) < limit and (delivery := self._buffer.pop()) is not None:
            taken.append(delivery)
        return taken

    async def _scan(self) -> None:
        self._scanned_at = self._clock()
        room = self.max_queued - len(self._buffer)
        if room <= 0:
            return
        for run in await self.store.pending(room):
            self._buffer.push(Delivery(run.run_id, run.tenant))

    async def ack(self, delivery: Delivery) -> None:
        self._buffer.drop(delivery.run_id)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:  # still pending in the store: the next start's scan finds them too
            self._buffer.push(delivery, front=True)
        if deliveries:
            self._wake.set()

    async def depth(self) -> int:
        return len(self._buffer)
