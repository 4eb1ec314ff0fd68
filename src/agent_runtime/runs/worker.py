"""``RunWorker``: one process's queue worker for background runs.

Intake: deliveries taken from the run queue wait in a ``FairBuffer`` (round-robin by tenant) and are
started while fewer than ``max_concurrent`` run; every ``scan_s`` the worker also looks in the run
store for runs whose lease expired (their worker died) and takes them into its intake. Execution:
``claim`` (compare-and-set on the record), a lease renewed by the ``LeaseKeeper`` while the executor
runs it (``execute_with_retry``, the whole middleware onion, as the principal stored with the run),
then one guarded write of the outcome, the queue's ``ack`` and the ``on_finished`` hooks.

A pending run whose session is still busy with an earlier run, or that is not due yet, is parked
(``runs.multitask.SessionGate``) and handed back to the queue when its turn may have come: when a run
of its session ended here, and at every scan (for runs that ended in other workers).

A claim that follows an earlier attempt asks the executor to continue from the run's last LangGraph
checkpoint (``orchestration.recovery``). On shutdown the runs still executing are put back to
``pending`` and their deliveries handed back to the queue.

Runs execute as streams (``execute_stream``): each event goes to the run's event log (``runs.events``),
so a client in any process can join it; the log is closed when the run ended (not when it is handed
back or its lease is lost: the next attempt continues the same log).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from agent_runtime.errors import AgentRuntimeError, RunCancelledError
from agent_runtime.orchestration.recovery import SALVAGED_KEY
from agent_runtime.runs.base import RunRecordStore
from agent_runtime.runs.events import recording
from agent_runtime.runs.events.base import RunEventLog
from agent_runtime.runs.lease import Claim, LeaseKeeper, StopReason, claim
from agent_runtime.runs.multitask import SessionGate, session_of
from agent_runtime.runs.queue.base import Delivery, RunQueue
from agent_runtime.runs.queue.fair import FairBuffer
from agent_runtime.runs.record import ACTIVE, Run, status_for_error
from agent_runtime.runs.recorder import run_context, run_status
from agent_runtime.runs.rollback import RunRollback
from agent_runtime.types import AgentContext, AgentResult, StreamEvent, Usage

__all__ = ["Executor", "FinishedHook", "Publish", "RunMetrics", "RunWorker", "SalvageHook", "run_context"]

log = logging.getLogger("agent_runtime.runs")


class Executor(Protocol):
    def validate(self, context: AgentContext) -> None: ...

    async def execute_with_retry(self, context: AgentContext, max_retries: int | None = None) -> AgentResult: ...

    def execute_stream(
        self, context: AgentContext, max_retries: int | None = 0, *, abandon: bool = True
    ) -> AsyncIterator[StreamEvent]: ...


class Publish(Protocol):
    def __call__(self, type: str, run: Run, payload: dict[str, Any]) -> None: ...


class RunMetrics(Protocol):
    def run_queue_depth(self, depth: int) -> None: ...

    def run_queue_wait_observe(self, seconds: float) -> None: ...

    def run_ended(self, status: str) -> None: ...

    def run_recovered(self) -> None: ...


FinishedHook = Callable[[Run], Awaitable[None] | None]
"""Called with the final record of every run this worker ended (webhooks, waiters)."""
SalvageHook = Callable[[Run, AgentResult, Usage, int], Awaitable[None]]
"""Charges what a dead attempt (number given) spent on the steps its successor did not execute again."""


class RunWorker:
    """Args:
    worker: this worker's id (``host:pid``), written on the runs it holds.
    max_concurrent: runs executed at the same time.
    lease_s / heartbeat_s: lease length and renewal period (``settings.runs``).
    max_attempts: claims of one run before it ends ``error``.
    scan_s: period of the expired-lease scan (and of touching the intake's deliveries).
    events: where the runs' streamed events go (``None``: nowhere).
    """

    def __init__(
        self,
        store: RunRecordStore,
        queue: RunQueue,
        executor: Executor,
        *,
        worker: str,
        events: RunEventLog | None = None,
        max_concurrent: int = 8,
        lease_s: float = 30.0,
        heartbeat_s: float = 10.0,
        max_attempts: int = 3,
        scan_s: float = 1.0,
        publish: Publish | None = None,
        metrics: RunMetrics | None = None,
        salvage: SalvageHook | None = None,
        rollback: RunRollback | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.queue, self.executor = store, queue, executor
        self.worker, self.events = worker, events
        self.max_concurrent = max_concurrent
        self.lease_s, self.max_attempts, self.scan_s = lease_s, max_attempts, scan_s
        self.publish, self.metrics, self.salvage = publish, metrics, salvage
        self.on_finished: list[FinishedHook] = []
        self.rollback = rollback or RunRollback(store)
        self.gate = SessionGate(store, queue, limit=queue.max_queued, clock=clock)
        self._clock = clock
        self.leases = LeaseKeeper(store, queue, worker=worker, lease_s=lease_s, heartbeat_s=heartbeat_s, clock=clock)
        self._intake = FairBuffer()
        self._slots = asyncio.Semaphore(max_concurrent)
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[str, asyncio.Task[recording.Streamed]] = {}
        self._stops: dict[str, StopReason] = {}
        self._loops: list[asyncio.Task[None]] = []

    @property
    def running(self) -> int:
        return len(self._running)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._take_loop(), name="agent-runtime-run-intake"),
            loop.create_task(self._scan_loop(), name="agent-runtime-run-scan"),
        ]

    def stop_local(self, run_id: str, reason: StopReason = "cancelled") -> bool:
        """Stop a run executing here; ``False`` when it does not execute in this process."""
        task = self._running.get(run_id)
        if task is None:
            return False
        self._stops.setdefault(run_id, reason)
        task.cancel()
        return True

    def _emit(self, type: str, run: Run, payload: dict[str, Any]) -> None:
        if self.publish is not None:
            try:
                self.publish(type, run, payload)
            except Exception:
                log.exception("publishing %s failed", type)

    # -- intake -------------------------------------------------------------------------------------
    async def _take_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()
            try:
                delivery = await self._next()
            except BaseException:
                self._slots.release()
                raise
            task = loop.create_task(self._execute(delivery), name=f"agent-runtime-run-{delivery.run_id}")
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _next(self) -> Delivery:
        """The next delivery to start: prefetch up to ``max_concurrent`` into the intake, pop fairly.

        Nothing is taken while the gate holds its bound of parked runs: they wait in the queue (whose
        bound then refuses new submissions) until runs end here or elsewhere."""
        while True:
            room = self.max_concurrent - len(self._intake)
            if self.gate.full and not len(self._intake):
                await asyncio.sleep(self.scan_s)
            elif room > 0 and not self.gate.full:
                await self._fill(room)
            delivery = self._intake.pop()
            if delivery is not None:
                return delivery

    async def _fill(self, room: int) -> None:
        try:
            taken = await self.queue.take(room, 0.0 if len(self._intake) else self.scan_s)
        except Exception as exc:  # the intake must outlive any backend failure
            log.warning("run queue: take failed: %s", getattr(exc, "message", None) or repr(exc))
            taken = []
            if not len(self._intake):
                await asyncio.sleep(self.scan_s)  # the backend is down: back off, then try again
        for duplicate in taken:
            held = duplicate.run_id in self._running or duplicate.run_id in self.gate
            if held or not self._intake.push(duplicate):
                await self._ack(duplicate)  # a run we hold already

    async def _scan_loop(self) -> None:
        """Every ``scan_s``: take in runs whose lease expired, keep the intake ours, report the depth."""
        while True:
            await asyncio.sleep(self.scan_s)
            try:
                await self._scan()
            except Exception as exc:  # logged; the next pass tries again
                log.warning("run queue: scan failed: %s", getattr(exc, "message", None) or repr(exc))

    async def _scan(self) -> None:
        for run in await self.store.expired(self._clock(), limit=self.max_concurrent):
            if run.run_id not in self._running:
                self._intake.push(Delivery(run.run_id, run.tenant))
        await self.gate.wake()
        await self.queue.touch([*self._intake, *(held.delivery for held in self.gate.parked.values())])
        if self.metrics is not None:
            self.metrics.run_queue_depth(await self.queue.depth() + len(self._intake) + len(self.gate))

    async def _ack(self, delivery: Delivery) -> None:
        try:
            await self.queue.ack(delivery)
        except AgentRuntimeError as exc:  # redelivered later; the claim then refuses it
            log.warning("run queue: ack of %s failed: %s", delivery.run_id, exc.message)

    # -- execution ----------------------------------------------------------------------------------
    async def _execute(self, delivery: Delivery) -> None:
        try:
            if await self.gate.hold(delivery):
                return
            claimed = await claim(
                self.store,
                delivery.run_id,
                worker=self.worker,
                lease_s=self.lease_s,
                max_attempts=self.max_attempts,
                now=self._clock(),
            )
        except AgentRuntimeError as exc:  # left unacknowledged: redelivered or found by the lease scan
            log.warning("background run %s: claim failed: %s", delivery.run_id, exc.message)
            return
        if claimed is None:
            await self._ack(delivery)
            return
        if claimed.exhausted:
            await self._ended(delivery, claimed.run)
            return
        self._started(claimed)
        try:
            await self._run(delivery, claimed)
        except AgentRuntimeError as exc:
            log.warning("background run %s: run store failed: %s", delivery.run_id, exc.message)

    def _started(self, claimed: Claim) -> None:
        run = claimed.run
        if claimed.recovered:
            log.warning("run %s taken over after its worker's lease expired (attempt %d)", run.run_id, run.attempts)
            self._emit("run.recovered", run, {"attempt": run.attempts, "recoveries": run.recoveries})
            if self.metrics is not None:
                self.metrics.run_recovered()
        if run.attempts == 1 and self.metrics is not None and run.started_at is not None:
            self.metrics.run_queue_wait_observe(max(0.0, run.started_at - run.created_at))

    async def _run(self, delivery: Delivery, claimed: Claim) -> None:
        run = claimed.run
        context = run_context(run, resumed=claimed.resumed)
        stream = self.executor.execute_stream(context, max_retries=None, abandon=False)
        task = asyncio.get_running_loop().create_task(recording.record_stream(self.events, run.run_id, stream))
        self._running[run.run_id] = task
        self.leases.hold(delivery, lambda reason: self.stop_local(run.run_id, reason))
        try:
            streamed = await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            reason = self._stops.get(run.run_id)
            if reason is None or (current is not None and current.cancelling()):
                await self._put_back(delivery, run, task)  # this worker is stopping
                raise
            if reason == "lost":  # another worker holds it now: its outcome is theirs to write
                await self._ack(delivery)
                return
            if reason == "rollback":
                await self._rolled_back(delivery, run)
                return
            await self._failed(delivery, run, RunCancelledError("run cancelled"))
        except AgentRuntimeError as exc:
            await self._failed(delivery, run, exc)
        else:
            await self._succeeded(delivery, run, streamed)
        finally:
            self._running.pop(run.run_id, None)
            self._stops.pop(run.run_id, None)
            self.leases.drop(run.run_id)

    async def _succeeded(self, delivery: Delivery, run: Run, streamed: recording.Streamed) -> None:
        result = streamed.result
        usage = result.usage
        salvaged = result.metadata.pop(SALVAGED_KEY, None)
        if isinstance(salvaged, Usage) and (salvaged.total_tokens or salvaged.cost_usd):
            if self.salvage is not None:  # the dead attempt's finished steps: charged once, as that attempt
                await self.salvage(run, result, salvaged, max(1, run.attempts - 1))
            usage = usage.add(salvaged)
        ended = await self.store.transition(
            run.run_id,
            ACTIVE,
            match={"worker": self.worker},
            status=run_status(result),
            ended_at=time.time(),
            output=result.output,
            usage=usage.model_dump(),
            attempts=max(run.attempts, result.attempts),
            lease_until=None,
        )
        await self._ended(delivery, ended, streamed.final)

    async def _failed(self, delivery: Delivery, run: Run, exc: AgentRuntimeError) -> None:
        status = status_for_error(exc.code)
        attempts = max(run.attempts, int(exc.details.get("attempts", run.attempts)))
        ended = await self.store.transition(
            run.run_id,
            ACTIVE,
            match={"worker": self.worker},
            status=status,
            ended_at=time.time(),
            error=_error(exc),
            attempts=attempts,
            lease_until=None,
        )
        if ended is not None and status == "cancelled":
            self._emit("run.cancelled", ended, {"status_before": "running"})
        await self._ended(delivery, ended, recording.error_event(run.run_id, exc))

    async def _rolled_back(self, delivery: Delivery, run: Run) -> None:
        """A run cancelled with ``rollback``: its checkpoints and record are dropped (``runs.rollback``)."""
        error = RunCancelledError("run cancelled and rolled back")
        await self.rollback(run)
        changes = {"status": "cancelled", "ended_at": time.time(), "lease_until": None, "error": _error(error)}
        final = run.model_copy(update=changes)
        self._emit("run.cancelled", final, {"status_before": "running", "action": "rollback"})
        await self._ended(delivery, final, recording.error_event(run.run_id, error))

    async def _ended(self, delivery: Delivery, run: Run | None, last: StreamEvent | None = None) -> None:
        """The run's outcome is written (``run``: ``None`` when another worker holds it now)."""
        await self._ack(delivery)
        if run is None:
            return
        if (session := session_of(run)) is not None:  # the next run of its session may start now
            await self.gate.wake(session)
        if last is None and run.error:
            last = recording.error_event(run.run_id, run.error)
        if run.error and run.error.get("code") == "max_attempts":
            self._emit("run.failed", run, {"error_code": "max_attempts", "message": run.error.get("message")})
        if self.metrics is not None:
            self.metrics.run_ended(run.status)
        for hook in self.on_finished:  # before the log ends: a client whose stream ended sees the thread's outcome
            try:
                outcome = hook(run)
                if outcome is not None:
                    await outcome
            except Exception:
                log.exception("on_finished hook failed for run %s", run.run_id)
        await recording.end(self.events, run.run_id, last)

    async def _put_back(self, delivery: Delivery, run: Run, task: asyncio.Task[recording.Streamed]) -> None:
        """Shutdown: stop the run and hand it back (its next claim resumes it from its checkpoint)."""
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        with contextlib.suppress(AgentRuntimeError):
            changes: dict[str, Any] = {"status": "pending", "worker": None, "lease_until": None}
            await self.store.transition(run.run_id, ("running",), match={"worker": self.worker}, **changes)
            await self.queue.release([delivery])

    async def aclose(self) -> None:
        loops, self._loops = self._loops, []
        for loop_task in loops:
            loop_task.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for pending in (*loops, *tasks):
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await pending
        waiting = [*self._intake, *self.gate.drain()]
        self._intake = FairBuffer()
        with contextlib.suppress(AgentRuntimeError):
            await self.queue.release(waiting)
        await self.leases.aclose()


def _error(exc: AgentRuntimeError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message}
