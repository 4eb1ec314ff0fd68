"""``RunTracker`` (this process's in-flight runs) and ``RunReaper`` (closes the runs of dead workers).

Hot-path cost per run attempt: one write when it starts and one when it ends. A background task per
process (not per run), alive only while runs are in flight, refreshes the heartbeat of attempts
older than ``heartbeat_s`` in one batched write per interval. A live attempt's heartbeat is thus
never older than ``2 * heartbeat_s``; ``abandon_after_s`` must be larger than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from agent_runtime.errors import AgentRuntimeError, ConfigurationError, RunAbandonedError
from agent_runtime.limits.quota.base import QuotaLedger, Reservation
from agent_runtime.orchestration.middleware._accounting import run_shielded
from agent_runtime.orchestration.runs.base import RunRecord, RunStore, reservation_dict
from agent_runtime.types import AgentContext

__all__ = ["AbandonedHook", "ChargePolicy", "RunReaper", "RunTracker"]

log = logging.getLogger("agent_runtime.run_registry")

ChargePolicy = Literal["reserved", "release"]
AbandonedHook = Callable[[RunRecord, RunAbandonedError], Awaitable[None] | None]
_RESERVATION_KEY = "cost.reservation"  # CostTrackingMiddleware.STATE_KEY


class RunTracker:
    """Records this process's run attempts in ``store`` and keeps their heartbeats fresh.

    Registry failures never fail a run: the attempt just goes untracked (and is logged).
    """

    def __init__(
        self,
        store: RunStore,
        *,
        heartbeat_s: float = 10.0,
        abandon_after_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if abandon_after_s <= 2 * heartbeat_s:
            raise ConfigurationError("run_abandon_after_s must be more than twice run_heartbeat_s")
        self.store = store
        self.heartbeat_s = heartbeat_s
        self.abandon_after_s = abandon_after_s
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._clock = clock
        self._inflight: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def started(self, context: AgentContext) -> str | None:
        """Record the attempt; returns its key for ``finished`` (``None`` if the write failed)."""
        now = self._clock()
        reservation = context.state.get(_RESERVATION_KEY)
        principal = context.principal
        record = RunRecord(
            key=f"{context.run_id}:{context.attempt}",
            run_id=context.run_id,
            attempt=context.attempt,
            template=context.template,
            tenant=principal.tenant if principal else None,
            user=principal.user if principal else None,
            session_id=context.session_id,
            model=context.model,
            worker=self.worker,
            started_at=now,
            heartbeat_at=now,
            reservation=reservation_dict(reservation) if isinstance(reservation, Reservation) else None,
        )
        try:
            await self.store.start(record)
        except AgentRuntimeError as exc:
            log.warning("run %s is not tracked (run registry: %s)", context.run_id, exc.message)
            return None
        self._inflight[record.key] = now
        self._ensure_heartbeat()
        return record.key

    async def finished(self, key: str | None) -> None:
        if key is not None:
            self._inflight.pop(key, None)
            if self.store.in_process:  # nothing to shield: it never suspends
                await self.store.finish(key)
            else:  # a cancelled run's record must still go, or the reaper would charge it again
                await run_shielded(self.store.finish(key), "run registry finish")

    def _ensure_heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._beat(), name="agent-runtime-run-heartbeat")

    async def _beat(self) -> None:
        while self._inflight:
            await asyncio.sleep(self.heartbeat_s)
            now = self._clock()
            due = [key for key, started in self._inflight.items() if now - started >= self.heartbeat_s]
            if not due:
                continue
            try:
                await self.store.heartbeat(due, now)
            except AgentRuntimeError as exc:
                log.warning("run heartbeat of %d run(s) failed: %s", len(due), exc.message)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):  # RuntimeError: another (closed) loop
                await self._task
        self._task = None


class RunReaper:
    """Marks runs without a fresh heartbeat ``abandoned``, settles their quota reservation by policy and
    reports them (``on_abandoned``: the ``run.failed`` event with code ``abandoned``, metrics).

    Args:
        charge: ``"reserved"``: the reservation is charged in full (a run that died mid-way may have
            spent up to its bound; quotas never under-count); ``"release"``: it is dropped.
    """

    def __init__(
        self,
        store: RunStore,
        *,
        abandon_after_s: float = 60.0,
        ledger: QuotaLedger | None = None,
        charge: ChargePolicy = "reserved",
        on_abandoned: AbandonedHook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.abandon_after_s = abandon_after_s
        self.ledger = ledger
        self.charge = charge
        self.on_abandoned = on_abandoned
        self._clock = clock

    async def reap(self) -> list[RunRecord]:
        """Claim and close every stale run now; returns the records this call closed."""
        closed: list[RunRecord] = []
        while True:
            now = self._clock()
            batch = await self.store.claim_stale(now - self.abandon_after_s, now)
            for record in batch:
                await self._close(record)
            closed += batch
            if len(batch) < 100:
                return closed

    async def _close(self, record: RunRecord) -> None:
        silent_s = self._clock() - record.heartbeat_at
        log.warning(
            "run %s (attempt %d) abandoned: worker %s silent for %.0f s",
            record.run_id,
            record.attempt,
            record.worker,
            silent_s,
        )
        reservation = record.quota_reservation()
        if reservation is not None and self.ledger is not None:
            try:
                if self.charge == "reserved":
                    usd = reservation.usd_micros / 1_000_000
                    await self.ledger.settle(reservation, tokens=reservation.tokens, cost_usd=usd)
                else:
                    await self.ledger.release(reservation)
            except AgentRuntimeError as exc:  # claimed already: the reservation now expires by its TTL
                log.warning("could not settle the quota of abandoned run %s: %s", record.run_id, exc.message)
        error = RunAbandonedError(
            f"run abandoned: its worker stopped responding for {silent_s:.0f} s",
            details={"run_id": record.run_id, "attempt": record.attempt, "worker": record.worker},
        )
        if self.on_abandoned is not None:
            try:
                outcome = self.on_abandoned(record, error)
                if outcome is not None:
                    await outcome
            except Exception:
                log.exception("on_abandoned hook failed for run %s", record.run_id)

    async def run_forever(self, interval_s: float) -> None:
        """Reap now, then every ``interval_s`` (the server's lifespan runs this as a task)."""
        while True:
            try:
                await self.reap()
            except AgentRuntimeError as exc:
                log.warning("run reaper pass failed: %s", exc.message)
            await asyncio.sleep(interval_s)
