"""``RunDispatcher``: background runs of one worker process, on the run store's pending records.

The store's ``pending`` records are the queue: ``submit`` stores a run as pending and hands its id to
this process's workers (``max_concurrent`` asyncio tasks); a worker takes a run with the store's
compare-and-set (``pending -> running``), so a run is executed by exactly one worker even when several
processes read the same pending records. At start the dispatcher picks up the pending records left
in the store (on SQLite: a restart of the only process resumes them). Each run goes through the
executor's ``execute_with_retry``, the same onion (auth, rate limit, quota, logging, metrics, bus)
as a run answered in its own request, as the principal stored with the run.

On shutdown the runs still executing are put back to ``pending`` (their next start counts another
attempt). Backpressure: at most ``max_queued`` runs wait in one process; beyond it ``submit`` raises
``QueueFullError`` (503 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

from agent_runtime.errors import (
    AgentRuntimeError,
    ConflictError,
    RunCancelledError,
    RunNotFoundError,
    ServiceUnavailableError,
)
from agent_runtime.runs.base import RunRecordStore
from agent_runtime.runs.record import ACTIVE, Run, status_for_error
from agent_runtime.runs.recorder import BACKGROUND_KEY, new_run, run_status, worker_id
from agent_runtime.types import AgentContext, AgentResult

__all__ = ["Publish", "QueueFullError", "RunDispatcher"]

log = logging.getLogger("agent_runtime.runs")

_POLL_S = (0.01, 0.5)  # first and longest pause of ``wait`` polling a run another process executes


class QueueFullError(ServiceUnavailableError):
    code = "queue_full"


class Executor(Protocol):
    def validate(self, context: AgentContext) -> None: ...

    async def execute_with_retry(self, context: AgentContext, max_retries: int | None = None) -> AgentResult: ...


class Publish(Protocol):
    def __call__(self, type: str, run: Run, payload: dict[str, Any]) -> None: ...


class RunDispatcher:
    """Executes background runs in this process.

    Args:
        max_concurrent: runs executed at the same time by this process.
        max_queued: runs waiting in this process before ``submit`` answers ``QueueFullError``.
        publish: sends ``run.queued`` / ``run.cancelled`` (``run.started`` and the end events come
            from the executor's observers).
    """

    def __init__(
        self,
        store: RunRecordStore,
        executor: Executor,
        *,
        max_concurrent: int = 8,
        max_queued: int = 1000,
        publish: Publish | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.publish = publish
        self.worker = worker_id()
        self._queue: asyncio.Queue[str] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[AgentResult]] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._cancelling: set[str] = set()

    @property
    def queued(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> int:
        """Start the workers and pick up the pending runs in the store; returns how many were picked up."""
        self._queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._workers = [
            loop.create_task(self._work(), name=f"agent-runtime-run-worker-{i}") for i in range(self.max_concurrent)
        ]
        pending = await self.store.pending(self.max_queued)
        for run in pending:
            self._done[run.run_id] = asyncio.Event()
            self._queue.put_nowait(run.run_id)
        if pending:
            log.info("picked up %d pending background run(s)", len(pending))
        return len(pending)

    async def submit(self, context: AgentContext) -> Run:
        """Store the run as pending and queue it here; ``QueueFullError`` when this process is full."""
        if self._queue is None:
            raise ServiceUnavailableError("background runs are not accepted by this process", retry_after=1.0)
        if self._queue.qsize() >= self.max_queued:
            raise QueueFullError(
                f"the run queue is full ({self.max_queued} runs waiting)",
                retry_after=1.0,
                details={"queued": self.max_queued},
            )
        self.executor.validate(context)
        run = new_run(context, status="pending", background=True)
        await self.store.create(run)
        self._done[run.run_id] = asyncio.Event()
        self._queue.put_nowait(run.run_id)
        self._emit("run.queued", run, {})
        return run

    def _emit(self, type: str, run: Run, payload: dict[str, Any]) -> None:
        if self.publish is not None:
            try:
                self.publish(type, run, payload)
            except Exception:
                log.exception("publishing %s failed", type)

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            run_id = await self._queue.get()
            try:
                await self._execute(run_id)
            except AgentRuntimeError as exc:
                log.warning("background run %s: run store failed: %s", run_id, exc.message)
            except Exception:
                log.exception("background run %s failed outside the executor", run_id)

    async def _execute(self, run_id: str) -> None:
        claimed = await self.store.transition(
            run_id, ("pending",), status="running", started_at=time.time(), worker=self.worker, error=None
        )
        if claimed is None:  # cancelled meanwhile, or another process took it
            self._finished(run_id)
            return
        task = asyncio.get_running_loop().create_task(self.executor.execute_with_retry(_context(claimed)))
        self._running[run_id] = task
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if run_id not in self._cancelling or (current is not None and current.cancelling()):
                await self._stop(claimed, task)  # this worker is being stopped
                raise
            await self._end(claimed, RunCancelledError("run cancelled"))
        except AgentRuntimeError as exc:
            await self._end(claimed, exc)
        else:
            await self.store.transition(
                run_id,
                ACTIVE,
                status=run_status(result),
                ended_at=time.time(),
                output=result.output,
                usage=result.usage.model_dump(),
                attempts=claimed.attempts + result.attempts,
            )
        finally:
            self._running.pop(run_id, None)
            self._cancelling.discard(run_id)
            self._finished(run_id)

    async def _end(self, run: Run, exc: AgentRuntimeError) -> None:
        status = "cancelled" if exc.code == "cancelled" else status_for_error(exc.code)
        attempts = run.attempts + int(exc.details.get("attempts", 1))
        error = {"code": exc.code, "message": exc.message}
        ended = await self.store.transition(
            run.run_id, ACTIVE, status=status, ended_at=time.time(), error=error, attempts=attempts
        )
        if ended is not None and status == "cancelled":
            self._emit("run.cancelled", ended, {"status_before": "running"})

    async def _stop(self, run: Run, task: asyncio.Task[AgentResult]) -> None:
        """Shutdown: stop the run and put it back to pending for the next start (one attempt spent)."""
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        with contextlib.suppress(AgentRuntimeError):
            changes = {"status": "pending", "worker": None, "attempts": run.attempts + 1}
            await self.store.transition(run.run_id, ("running",), **changes)

    def _finished(self, run_id: str) -> None:
        done = self._done.pop(run_id, None)
        if done is not None:
            done.set()

    async def cancel(self, run_id: str, tenant: str) -> Run:
        """Cancel a pending or running run of ``tenant``; 404 when it has none such, 409 when finished."""
        run = await self.get(run_id, tenant)
        if run.status == "pending":
            cancelled = await self.store.transition(run_id, ("pending",), status="cancelled", ended_at=time.time())
            if cancelled is not None:
                self._emit("run.cancelled", cancelled, {"status_before": "pending"})
                return cancelled
            run = await self.get(run_id, tenant)
        if run.done:
            raise ConflictError(f"run {run_id} has already finished ({run.status})", details={"status": run.status})
        task = self._running.get(run_id)
        if task is None:  # running in another process: it sees the flag (see README "Runs")
            marked = await self.store.transition(run_id, ("running",), cancel_requested=True)
            return marked or await self.get(run_id, tenant)
        self._cancelling.add(run_id)
        task.cancel()
        return await self.wait(run_id, tenant, timeout_s=30.0)

    async def get(self, run_id: str, tenant: str) -> Run:
        run = await self.store.get(run_id, tenant=tenant)
        if run is None:
            raise RunNotFoundError(f"run {run_id} not found", details={"run_id": run_id})
        return run

    async def wait(self, run_id: str, tenant: str, *, timeout_s: float) -> Run:
        """The run once it has finished, or as it is after ``timeout_s``."""
        run = await self.get(run_id, tenant)
        deadline = time.monotonic() + timeout_s
        pause = _POLL_S[0]
        while not run.done and (left := deadline - time.monotonic()) > 0:
            done = self._done.get(run_id)
            if done is not None:  # executed here: woken when it ends
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), left)
            else:
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, _POLL_S[1])
            run = await self.get(run_id, tenant)
        return run

    async def aclose(self) -> None:
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await worker
        self._queue = None


def _context(run: Run) -> AgentContext:
    metadata = dict(run.metadata)
    metadata[BACKGROUND_KEY] = True
    metadata.setdefault("source", "background")
    return AgentContext(
        input=run.input,
        template=run.template,
        run_id=run.run_id,
        session_id=run.session_id,
        model=run.model,
        principal=run.principal,
        metadata=metadata,
        timeout_s=run.timeout_s,
    )
