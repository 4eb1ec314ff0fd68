"""``RunDispatcher``: background runs as the API sees them: submit, get, cancel, wait.

``submit`` validates the run, stores it ``pending`` and puts it on the run queue (``runs.queue``: the
store's pending records on memory / SQLite, a Redis stream on Redis); ``QueueFullError`` (503 with
``Retry-After``) when the queue holds its bound. A process that executes runs (``serve`` by default,
``agent-runtime worker``) also has a ``RunWorker`` (``runs.worker``): leases, heartbeats, take-over
of a dead worker's runs and resume from their checkpoints live there. A dispatcher without one only
queues, reads and cancels.

Cancel works from any process: a pending run is cancelled in its record; a running one executing
here is stopped at once, one executing elsewhere is flagged (``cancel_requested``) and its worker
stops it at its next lease renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from agent_runtime.errors import (
    AgentRuntimeError,
    ConflictError,
    RunNotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from agent_runtime.runs.base import RunRecordStore
from agent_runtime.runs.multitask import DEFAULT_STRATEGY, MultitaskStrategy
from agent_runtime.runs.queue.base import QueueFullError, RunQueue
from agent_runtime.runs.record import Run
from agent_runtime.runs.recorder import new_run
from agent_runtime.runs.worker import Executor, Publish, RunWorker
from agent_runtime.types import AgentContext

__all__ = ["Publish", "QueueFullError", "RunDispatcher"]

_POLL_S = (0.01, 0.5)  # first and longest pause of ``wait`` polling a run another process executes


class RunDispatcher:
    """Queues background runs, and executes them when it has a ``worker``.

    Args:
        publish: sends ``run.queued`` / ``run.cancelled`` (``run.started`` and the end events come
            from the executor's observers, ``run.recovered`` from the worker).
    """

    def __init__(
        self,
        store: RunRecordStore,
        queue: RunQueue,
        executor: Executor,
        *,
        worker: RunWorker | None = None,
        publish: Publish | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.executor = executor
        self.worker = worker
        self.publish = publish
        self._accepting = False
        self._done: dict[str, asyncio.Event] = {}
        if worker is not None:
            worker.on_finished.append(self._finished)

    async def queued(self) -> int:
        return await self.queue.depth()

    async def start(self) -> None:
        """Accept submissions, and (with a worker) start executing, the runs left pending first."""
        self._accepting = True
        if self.worker is not None:
            await self.worker.start()

    async def submit(
        self,
        context: AgentContext,
        *,
        multitask: MultitaskStrategy = DEFAULT_STRATEGY,
        webhook: str | None = None,
        after_s: float = 0.0,
    ) -> Run:
        """Store the run as pending and queue it; ``QueueFullError`` when the queue is full.

        Args:
            multitask: what to do when the run's session is busy (``runs.multitask``).
            webhook: a URL the run's final record is POSTed to.
            after_s: start the run no sooner than this many seconds from now.
        """
        unsupported = {
            "multitask_strategy": multitask != DEFAULT_STRATEGY,
            "webhook": webhook is not None,
            "after_seconds": after_s > 0,
        }
        refused = [name for name, used in unsupported.items() if used]
        if refused:
            raise ValidationError(f"not supported yet: {', '.join(refused)}", details={"param": refused[0]})
        if not self._accepting:
            raise ServiceUnavailableError("background runs are not accepted by this process", retry_after=1.0)
        self.executor.validate(context)
        run = new_run(context, status="pending", background=True)
        await self.store.create(run)
        try:
            await self.queue.put(run)
        except AgentRuntimeError as exc:  # refused (full, or the queue is down): the record must not stay pending
            error = {"code": exc.code, "message": exc.message}
            with contextlib.suppress(AgentRuntimeError):
                await self.store.transition(run.run_id, ("pending",), status="error", ended_at=time.time(), error=error)
            raise
        if self.publish is not None:
            self.publish("run.queued", run, {})
        return run

    def _finished(self, run: Run) -> None:
        done = self._done.pop(run.run_id, None)
        if done is not None:
            done.set()

    async def cancel(self, run_id: str, tenant: str) -> Run:
        """Cancel a pending or running run of ``tenant``; 404 when it has none such, 409 when finished."""
        run = await self.get(run_id, tenant)
        if run.status == "pending":
            cancelled = await self.store.transition(run_id, ("pending",), status="cancelled", ended_at=time.time())
            if cancelled is not None:
                if self.publish is not None:
                    self.publish("run.cancelled", cancelled, {"status_before": "pending"})
                return cancelled
            run = await self.get(run_id, tenant)
        if run.done:
            raise ConflictError(f"run {run_id} has already finished ({run.status})", details={"status": run.status})
        if self.worker is not None and self.worker.stop_local(run_id):
            return await self.wait(run_id, tenant, timeout_s=30.0)
        # running in another process: its worker sees the flag at its next lease renewal
        marked = await self.store.transition(run_id, ("running",), cancel_requested=True)
        return marked or await self.get(run_id, tenant)

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
            local = self.worker is not None and run.worker == self.worker.worker and run.status == "running"
            if local:  # executed here: woken when it ends
                done = self._done.setdefault(run_id, asyncio.Event())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), min(left, _POLL_S[1]))
            else:
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, _POLL_S[1])
            run = await self.get(run_id, tenant)
        return run

    async def delete(self, run_id: str, tenant: str) -> None:
        """Remove a finished run's record; 404 when ``tenant`` has no such run, 409 while it is active."""
        run = await self.get(run_id, tenant)
        if not run.done:
            raise ConflictError(f"run {run_id} is {run.status}: cancel it first", details={"status": run.status})
        await self.store.delete(run_id)  # a finished record never changes again

    async def aclose(self) -> None:
        self._accepting = False
        if self.worker is not None:
            await self.worker.aclose()
        for done in self._done.values():
            done.set()
        self._done.clear()
