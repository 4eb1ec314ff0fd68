"""``RunDispatcher``: background runs as the API sees them: submit, get, cancel, wait.

``submit`` validates the run, stores it ``pending`` and puts it on the run queue (``runs.queue``: the
store's pending records on memory / SQLite, a Redis stream on Redis); ``QueueFullError`` (503 with
``Retry-After``) when the queue holds its bound. A process that executes runs (``serve`` by default,
``agent-runtime worker``) also has a ``RunWorker`` (``runs.worker``): leases, heartbeats, take-over
of a dead worker's runs and resume from their checkpoints live there. A dispatcher without one only
queues, reads and cancels.

Cancel works from any process: a pending run is cancelled in its record; a running one executing
here is stopped at once, one executing elsewhere is flagged (``cancel_requested``, with its
``cancel_action``) and its worker stops it at its next lease renewal. ``rollback`` also drops what the
run checkpointed, and its record (``runs.rollback``).

A run on a session that is busy follows its ``multitask_strategy`` (``runs.multitask``); the check is
made once the run is stored, so of two runs submitted at once on an idle session the later one is
the one refused (``reject``) or ordered after the other.
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
    SessionBusyError,
    ValidationError,
)
from agent_runtime.runs.base import RunRecordStore
from agent_runtime.runs.multitask import DEFAULT_STRATEGY, MultitaskStrategy, active_runs, session_of
from agent_runtime.runs.queue.base import QueueFullError, RunQueue
from agent_runtime.runs.record import CancelAction, Run
from agent_runtime.runs.recorder import DEFAULT_TENANT, new_run
from agent_runtime.runs.rollback import RunRollback
from agent_runtime.runs.webhooks import WebhookSender
from agent_runtime.runs.worker import Executor, Publish, RunWorker
from agent_runtime.types import AgentContext

__all__ = ["Publish", "QueueFullError", "RunDispatcher"]

_POLL_S = (0.01, 0.5)  # first and longest pause of ``wait`` polling a run another process executes
MAX_AFTER_S = 86_400.0
"""Furthest a run can be scheduled ahead (``after_seconds``)."""
_CANCEL_WAIT_S = 30.0


class RunDispatcher:
    """Queues background runs, and executes them when it has a ``worker``.

    Args:
        publish: sends ``run.queued`` / ``run.cancelled`` (``run.started`` and the end events come
            from the executor's observers, ``run.recovered`` from the worker).
        rollback: drops a rolled-back run's checkpoints and record (the worker's, when it has one).
        webhooks: checks a run's ``webhook`` at submission; delivers the final records of the runs the
            worker ends (``None``: webhooks are refused).
    """

    def __init__(
        self,
        store: RunRecordStore,
        queue: RunQueue,
        executor: Executor,
        *,
        worker: RunWorker | None = None,
        publish: Publish | None = None,
        rollback: RunRollback | None = None,
        webhooks: WebhookSender | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.executor = executor
        self.worker = worker
        self.publish = publish
        self.rollback = rollback or (worker.rollback if worker is not None else RunRollback(store))
        self.webhooks = webhooks
        self._accepting = False
        self._done: dict[str, asyncio.Event] = {}
        if worker is not None:
            worker.on_finished.append(self._finished)
            if webhooks is not None:
                worker.on_finished.append(webhooks.deliver)

    async def queued(self) -> int:
        return await self.queue.depth()

    async def start(self) -> None:
        """Accept submissions, and (with a worker) start executing, the runs left pending first."""
        self._accepting = True
        if self.worker is not None:
            await self.worker.start()

    def _check(self, context: AgentContext, webhook: str | None, after_s: float) -> str | None:
        if not 0.0 <= after_s <= MAX_AFTER_S:
            limit = f"after_seconds must be within 0..{MAX_AFTER_S:g}"
            raise ValidationError(limit, details={"param": "after_seconds"})
        if not self._accepting:
            raise ServiceUnavailableError("background runs are not accepted by this process", retry_after=1.0)
        self.executor.validate(context)
        if webhook is None:
            return None
        if self.webhooks is None:
            raise ValidationError("webhooks are not enabled on this server", details={"param": "webhook"})
        return self.webhooks.check(webhook)

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
            webhook: a URL the run's final record is POSTed to (its host must be allowed).
            after_s: start the run no sooner than this many seconds from now.
        """
        url = self._check(context, webhook, after_s)
        run = new_run(context, status="pending", background=True)
        run.webhook = url
        run.not_before = run.created_at + after_s if after_s > 0 else None
        await self.store.create(run)
        try:
            if run.session_id is not None:
                await self._make_room(run, multitask)
            await self.queue.put(run)
        except AgentRuntimeError as exc:  # refused (busy, full, or the queue is down): it must not stay pending
            await self._withdraw(run, exc)
            raise
        if self.publish is not None:
            self.publish("run.queued", run, {})
        return run

    async def _withdraw(self, run: Run, exc: AgentRuntimeError) -> None:
        with contextlib.suppress(AgentRuntimeError):
            if isinstance(exc, SessionBusyError):  # never accepted: no trace of it
                await self.store.delete(run.run_id)
                return
            error = {"code": exc.code, "message": exc.message}
            await self.store.transition(run.run_id, ("pending",), status="error", ended_at=time.time(), error=error)

    async def _make_room(self, run: Run, strategy: MultitaskStrategy) -> None:
        """Apply ``strategy`` to the runs of ``run``'s session submitted before it."""
        session = session_of(run)
        assert session is not None
        earlier = await active_runs(self.store, session, before=run)
        if earlier and strategy != "enqueue":
            await self._stop_all(earlier, strategy, session[2])

    async def _stop_all(self, runs: list[Run], strategy: MultitaskStrategy, session_id: str) -> None:
        """Refuse (``reject``) or cancel (``interrupt`` / ``rollback``) the session's active ``runs``."""
        busy = {"session_id": session_id, "active_run_ids": [r.run_id for r in runs][:20]}
        if strategy == "reject":
            raise SessionBusyError(f"session {session_id} is busy with another run", details=busy)
        if any(not r.background for r in runs):
            raise SessionBusyError(
                f"session {session_id} is busy with a foreground run, which cannot be {strategy}ed", details=busy
            )
        action: CancelAction = "rollback" if strategy == "rollback" else "interrupt"
        for active in runs:
            with contextlib.suppress(ConflictError, RunNotFoundError):  # it ended meanwhile
                await self._stop(active, action)

    async def prepare(self, context: AgentContext, strategy: MultitaskStrategy | None, *, timeout_s: float) -> None:
        """A foreground run on a session: apply ``strategy`` to the session's active runs, waiting (up to
        ``timeout_s``) for those it waits for (``enqueue``) or cancels to end; ``None``: nothing to do
        (the session's run lock alone decides, as before double-texting existed)."""
        if strategy is None or context.session_id is None:
            return
        runs = await active_runs(self.store, (context.tenant or DEFAULT_TENANT, context.user, context.session_id))
        if runs and strategy != "enqueue":
            await self._stop_all(runs, strategy, context.session_id)
        deadline = time.monotonic() + timeout_s
        for run in runs:
            if not (await self._final(run, deadline - time.monotonic())).done:
                busy = {"session_id": context.session_id, "active_run_ids": [run.run_id]}
                raise SessionBusyError(f"session {context.session_id} stayed busy for {timeout_s:g}s", details=busy)

    def _finished(self, run: Run) -> None:
        done = self._done.pop(run.run_id, None)
        if done is not None:
            done.set()

    async def cancel(self, run_id: str, tenant: str, action: CancelAction = "interrupt") -> Run:
        """Cancel a pending or running run of ``tenant``; 404 when it has none such, 409 when finished.

        With ``rollback`` the run's checkpoints and record are dropped too (answered: its last state)."""
        run = await self._stop(await self.get(run_id, tenant), action)
        if run.done or self.worker is None or run.worker != self.worker.worker:
            return run
        return await self._final(run, _CANCEL_WAIT_S)

    async def _stop(self, run: Run, action: CancelAction) -> Run:
        """Cancel ``run`` without waiting for it to stop; the run as it is now."""
        if run.status == "pending":
            cancelled = await self.store.transition(run.run_id, ("pending",), status="cancelled", ended_at=time.time())
            if cancelled is not None:
                if self.publish is not None:
                    self.publish("run.cancelled", cancelled, {"status_before": "pending", "action": action})
                if action == "rollback":
                    await self.rollback(cancelled)
                if self.webhooks is not None:  # it ended without a worker: told from here
                    await self.webhooks.deliver(cancelled)
                return cancelled
            run = await self.get(run.run_id, run.tenant)
        if run.done:
            raise ConflictError(f"run {run.run_id} has already finished ({run.status})", details={"status": run.status})
        # seen by its worker at the next lease renewal, or right now when it runs here
        marked = await self.store.transition(run.run_id, ("running",), cancel_requested=True, cancel_action=action)
        if self.worker is not None:
            self.worker.stop_local(run.run_id, "rollback" if action == "rollback" else "cancelled")
        return marked or await self.get(run.run_id, run.tenant)

    async def _final(self, run: Run, timeout_s: float) -> Run:
        """``run`` once ended (a rolled-back one: as it was when it stopped), or as it is after ``timeout_s``."""
        try:
            return await self.wait(run.run_id, run.tenant, timeout_s=max(0.0, timeout_s))
        except RunNotFoundError:  # rolled back: its record is gone
            return run.model_copy(update={"status": "cancelled", "lease_until": None})

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
        if self.webhooks is not None:
            await self.webhooks.aclose()
        for done in self._done.values():
            done.set()
        self._done.clear()
