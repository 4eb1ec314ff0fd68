"""``RunTracker`` (this process's in-flight runs) and ``RunReaper`` (closes the runs of dead workers).

Hot-path cost per run attempt: none for the common short run. ``started`` only notes the attempt in
memory; one background task per process (not per run, alive only while runs are in flight) writes,
every ``flush_s`` (``min(heartbeat_s, 0.25 s)`` by default), the attempts that have been running for
``flush_s`` in one batched write, and refreshes the heartbeat of registered attempts older than
``heartbeat_s`` in one batched write per interval. An attempt that ends before it was written costs
no write at all. A written one is dropped when it ends, in one write shared by every attempt ending
meanwhile, whose answer also says whether a reaper claimed it (see ``finished``). A live attempt's
heartbeat is thus never older than ``2 * heartbeat_s``; ``abandon_after_s`` must be larger than that.

The trade-off: a worker killed within ``2 * flush_s`` of an attempt's start may leave no record of
it, so no reaper reports it; its quota reservation stops counting when its TTL expires (the cost
middleware's ``reservation_ttl_s``) instead of being charged, and its session lease expires by itself
as for any dead worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from agent_runtime.accounting.attempts import REAPED_CHARGE_KEY, REGISTRY_FINISH_KEY, RESERVATION_KEY, run_shielded
from agent_runtime.errors import AgentRuntimeError, ConfigurationError, RunAbandonedError
from agent_runtime.limits.quota.base import QuotaLedger, Reservation
from agent_runtime.orchestration.recovery import DURABLE_KEY
from agent_runtime.orchestration.runs.base import ChargePolicy, RunRecord, RunStore, reservation_dict
from agent_runtime.types import AgentContext

__all__ = ["AbandonedHook", "ChargePolicy", "RunReaper", "RunTracker"]

log = logging.getLogger("agent_runtime.run_registry")

AbandonedHook = Callable[[RunRecord, RunAbandonedError], Awaitable[None] | None]
FLUSH_S = 0.25


class RunTracker:
    """Records this process's run attempts in ``store`` and keeps their heartbeats fresh.

    Registry failures never fail a run: a batch that could not be written is tried again at the next
    flush while its attempts run (and is logged).

    Args:
        flush_s: how long an attempt runs before it is written (capped at ``heartbeat_s``).
    """

    def __init__(
        self,
        store: RunStore,
        *,
        heartbeat_s: float = 10.0,
        abandon_after_s: float = 60.0,
        flush_s: float = FLUSH_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if abandon_after_s <= 2 * heartbeat_s:
            raise ConfigurationError("run_abandon_after_s must be more than twice run_heartbeat_s")
        self.store = store
        self.heartbeat_s = heartbeat_s
        self.abandon_after_s = abandon_after_s
        self.flush_s = min(flush_s, heartbeat_s)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._clock = clock
        self._pending: dict[str, tuple[AgentContext, float]] = {}
        self._unsure: set[str] = set()  # pending again after a failed start write: drop them anyway
        """Attempts not written yet: key -> (context, started at)."""
        self._inflight: dict[str, float] = {}
        """Attempts written (or being written): key -> when their heartbeat was last written."""
        self._writing: set[str] = set()
        """Keys of the batch being written right now."""
        self._ended: dict[str, tuple[AgentContext | None, asyncio.Future[None]]] = {}
        """Written attempts that ended, waiting for the next batched drop."""
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._dropper: asyncio.Task[None] | None = None

    @property
    def inflight(self) -> int:
        return len(self._pending) + len(self._inflight)

    async def started(self, context: AgentContext) -> str:
        """Note the attempt (written by a later flush if it still runs); returns its key for ``finished``."""
        key = f"{context.run_id}:{context.attempt}"
        now = self._clock()
        if self.store.in_process:  # no I/O: register at once
            await self.store.start(self._record(key, context, now, now))
            self._inflight[key] = now
        else:
            self._pending[key] = (context, now)
        self._task = _ensure(self._task, self._loop, "agent-runtime-run-registry")
        return key

    async def finished(self, key: str | None, context: AgentContext | None = None) -> None:
        """Drop the attempt's record. When a reaper claimed it first (this worker stalled past
        ``abandon_after_s``), what the reaper charged is put in ``context.state`` for the cost middleware.

        The wait is shielded: a cancelled run's record must still go, or the reaper would charge it again.
        """
        if key is None:
            return
        unsure = key in self._unsure  # a start write failed, maybe after it was applied
        self._unsure.discard(key)
        if self._pending.pop(key, None) is not None:
            if not unsure:
                return  # never written: nothing to drop, and no reaper can have seen it
        elif self._inflight.pop(key, None) is None:
            return
        if self.store.in_process:  # nothing to batch or shield: it never suspends
            claimed = await self.store.finish(key)
            if claimed is not None:
                _note_reaped(claimed, context)
            return
        done = asyncio.get_running_loop().create_future()
        self._ended[key] = (context, done)
        if context is not None:
            context.state[REGISTRY_FINISH_KEY] = done  # the cost middleware waits for it before settling
        self._dropper = _ensure(self._dropper, self._drop_ended, "agent-runtime-run-drop")
        await run_shielded(done, "run registry finish")

    async def _drop_ended(self) -> None:
        """Drop every written attempt that ended since the previous drop, in one write, until none is left."""
        batch: dict[str, tuple[AgentContext | None, asyncio.Future[None]]] = {}
        try:
            while self._ended:
                while self._writing & self._ended.keys():  # their start is being written: drop after it, not before
                    await asyncio.sleep(0.001)
                batch, self._ended = self._ended, {}
                try:
                    claimed = await self.store.finish_many(list(batch))
                except Exception as exc:  # left to the reaper (which will charge them)
                    log.warning("run registry: %d ended run(s) not dropped: %s", len(batch), exc)
                    claimed = {}
                for key, (context, _) in batch.items():
                    if key in claimed:
                        _note_reaped(claimed[key], context)
                _release(batch)
        finally:  # also when cancelled (shutdown): nobody waits forever
            _release(batch)
            _release(self._ended)
            self._ended = {}

    def _record(self, key: str, context: AgentContext, started: float, now: float) -> RunRecord:
        reservation = context.state.get(RESERVATION_KEY)
        principal = context.principal
        return RunRecord(
            key=key,
            run_id=context.run_id,
            attempt=context.attempt,
            template=context.template,
            tenant=principal.tenant if principal else None,
            user=principal.user if principal else None,
            session_id=context.session_id,
            model=context.model,
            worker=self.worker,
            started_at=started,
            heartbeat_at=now,
            reservation=reservation_dict(reservation) if isinstance(reservation, Reservation) else None,
            metadata={"resumable": True} if context.metadata.get(DURABLE_KEY) else {},
        )

    async def _loop(self) -> None:
        interval = self.heartbeat_s if self.store.in_process else self.flush_s
        while self._pending or self._inflight:
            await asyncio.sleep(interval)
            await self._flush()
            await self._beat()

    async def _flush(self) -> None:
        """Write the attempts that have run for ``flush_s`` already, in one write."""
        now = self._clock()
        due = [key for key, (_, started) in self._pending.items() if now - started >= self.flush_s]
        if not due:
            return
        batch = {key: self._pending.pop(key) for key in due}
        records = [self._record(key, context, started, now) for key, (context, started) in batch.items()]
        self._writing = set(batch)
        self._inflight.update(dict.fromkeys(batch, now))
        try:
            await self.store.start_many(records)
        except AgentRuntimeError as exc:
            if not self._failing:
                log.warning("%d run(s) not in the run registry yet (will retry): %s", len(records), exc.message)
            self._failing = True
            for key, entry in batch.items():  # still running: try again at the next flush
                if self._inflight.pop(key, None) is not None:
                    self._pending[key] = entry
                    self._unsure.add(key)
        else:
            self._failing = False
            self._unsure.difference_update(batch)
        finally:
            self._writing = set()

    async def _beat(self) -> None:
        now = self._clock()
        due = [key for key, beat in self._inflight.items() if now - beat >= self.heartbeat_s]
        if not due:
            return
        try:
            await self.store.heartbeat(due, now)
        except AgentRuntimeError as exc:
            log.warning("run heartbeat of %d run(s) failed: %s", len(due), exc.message)
            return
        for key in due:
            if key in self._inflight:
                self._inflight[key] = now

    async def aclose(self) -> None:
        task, dropper = self._task, self._dropper
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):  # RuntimeError: another (closed) loop
                await task
        if dropper is not None and not dropper.done():  # let the last drops land (the store closes after us)
            if dropper.get_loop() is asyncio.get_running_loop():
                with contextlib.suppress(Exception):
                    await dropper
            else:
                dropper.cancel()
        self._task = self._dropper = None


def _ensure(
    task: asyncio.Task[None] | None, work: Callable[[], Coroutine[Any, Any, None]], name: str
) -> asyncio.Task[None]:
    """``task`` while it runs on this loop, else a new task running ``work``."""
    loop = asyncio.get_running_loop()
    if task is None or task.done() or task.get_loop() is not loop:
        return loop.create_task(work(), name=name)
    return task


def _release(batch: dict[str, tuple[AgentContext | None, asyncio.Future[None]]]) -> None:
    for _, done in batch.values():
        if not done.done():
            done.set_result(None)


def _note_reaped(record: RunRecord, context: AgentContext | None) -> None:
    tokens, usd_micros = record.reaper_charge()
    log.warning(
        "run %s (attempt %d) ended after a reaper had abandoned it (its worker stalled); the reaper charged "
        "%d tokens and %d micro-USD",
        record.run_id,
        record.attempt,
        tokens,
        usd_micros,
    )
    if context is not None:
        context.state[REAPED_CHARGE_KEY] = (tokens, usd_micros)


class RunReaper:
    """Marks runs without a fresh heartbeat ``abandoned``, settles their quota reservation by policy and
    reports them (``on_abandoned``: the ``run.failed`` event with code ``abandoned``, metrics).

    Attempts of queued (background) runs are resumable: their run is taken over by another worker when
    its lease expires (``runs.lease``), so the reaper only releases their reservation and reports nothing.

    Args:
        charge: ``"reserved"``: the reservation is charged in full (a run that died mid-way may have
            spent up to its bound; quotas never under-count); ``"release"``: it is dropped. Stamped on
            the claimed record, so that a worker that was only stalled settles just the difference.
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
        charge: ChargePolicy = self.charge if self.ledger is not None else "release"
        while True:
            now = self._clock()
            batch = await self.store.claim_stale(now - self.abandon_after_s, now, charge=charge)
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
        resumable = bool(record.metadata.get("resumable"))  # a queued run: another worker resumes it
        reservation = record.quota_reservation()
        if reservation is not None and self.ledger is not None:
            try:
                if record.charge == "reserved" and not resumable:
                    usd = reservation.usd_micros / 1_000_000
                    await self.ledger.settle(reservation, tokens=reservation.tokens, cost_usd=usd)
                else:
                    await self.ledger.release(reservation)
            except AgentRuntimeError as exc:  # claimed already: the reservation now expires by its TTL
                log.warning("could not settle the quota of abandoned run %s: %s", record.run_id, exc.message)
        if resumable:  # its reservation is released: the resuming attempt and its salvage charge what was spent
            log.info("run %s is queued: left to the worker that takes over its lease", record.run_id)
            return
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
