"""``RunRecorder``: the executor observer that keeps a run record for every run answered in its own
request (HTTP, chat completions, CLI, triggers); background runs are recorded by the dispatcher.

Observers are synchronous and must stay cheap, so a notification only queues its write; one writer
task per process applies them in order (a run's start is always written before its end). A run's
record is thus a few milliseconds behind the run itself; a write that fails is logged, never raised.

Also the two conversions between a run and its record: ``new_run`` (the record of a context that
starts or is queued) and ``run_context`` (the executor's context of a queued run's claim).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.orchestration.recovery import DURABLE_KEY, RECOVER_KEY
from agent_runtime.runs.base import RunRecordStore
from agent_runtime.runs.record import Run, RunStatus, status_for_error
from agent_runtime.types import AgentContext, AgentResult, ChatTurn, ToolCallRecord
from agent_runtime.workflows.approval import RESUME_DECISIONS_KEY, RESUME_KEY, ResumeRequest

__all__ = [
    "BACKGROUND_KEY",
    "DEFAULT_TENANT",
    "HISTORY_KEY",
    "KWARGS_KEY",
    "RunRecorder",
    "new_run",
    "run_context",
    "run_status",
    "worker_id",
]

log = logging.getLogger("agent_runtime.runs")

BACKGROUND_KEY = "background"
"""``AgentContext.metadata`` key set on background runs (their record is the dispatcher's)."""
DEFAULT_TENANT = "default"
KWARGS_KEY = "kwargs"
"""Run metadata: the arguments a protocol's route took (JSON), kept so any process can show them."""
HISTORY_KEY = "history"
"""Run metadata of a queued run: the client's earlier turns (``AgentContext.history``), as JSON."""
_KEPT_METADATA = ("source", "client", "trigger", KWARGS_KEY, RESUME_DECISIONS_KEY)
_MAX_BACKLOG = 10_000
_RESULT_STATUS: dict[str, RunStatus] = {
    "completed": "success",
    "failed": "error",
    "interrupted": "interrupted",
    "cancelled": "cancelled",
}


def worker_id() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def run_status(result: AgentResult) -> RunStatus:
    return _RESULT_STATUS.get(result.status, "error")


def new_run(context: AgentContext, *, status: RunStatus, background: bool, worker: str | None = None) -> Run:
    """The record of a run that is starting (``running``) or queued (``pending``)."""
    principal = context.principal
    now = time.time()
    metadata = {k: v for k, v in context.metadata.items() if k in _KEPT_METADATA}
    if background and context.history:  # a worker rebuilds the run from its record alone
        metadata[HISTORY_KEY] = [turn.model_dump(mode="json") for turn in context.history]
    return Run(
        run_id=context.run_id,
        tenant=principal.tenant if principal else DEFAULT_TENANT,
        user=principal.user if principal else None,
        template=context.template,
        session_id=context.session_id,
        input=context.input,
        model=context.model,
        status=status,
        background=background,
        attempts=context.attempt if status == "running" else 0,
        created_at=now,
        started_at=now if status == "running" else None,
        worker=worker,
        timeout_s=context.timeout_s,
        metadata=metadata,
        principal=principal,
    )


def run_context(run: Run, *, resumed: bool) -> AgentContext:
    """The executor's context of one claim of a background run (its attempt numbers continue the run's)."""
    metadata = dict(run.metadata)
    metadata[BACKGROUND_KEY] = True
    metadata[DURABLE_KEY] = True
    if resumed:
        metadata[RECOVER_KEY] = True
    metadata.setdefault("source", "background")
    history = [ChatTurn.model_validate(turn) for turn in metadata.pop(HISTORY_KEY, None) or ()]
    if RESUME_DECISIONS_KEY in metadata and run.session_id is not None:  # answers the session's interrupt
        metadata[RESUME_KEY] = ResumeRequest(decisions=metadata[RESUME_DECISIONS_KEY], session_id=run.session_id)
        metadata["resume"] = True
    return AgentContext(
        input=run.input,
        history=history,
        template=run.template,
        run_id=run.run_id,
        session_id=run.session_id,
        model=run.model,
        principal=run.principal,
        metadata=metadata,
        timeout_s=run.timeout_s,
        attempt=max(1, run.attempts),
        graph_events=True,  # the log serves every protocol's join
    )


class RunRecorder:
    """A ``RunObserver`` writing the run records of foreground runs to ``store``."""

    def __init__(self, store: RunRecordStore) -> None:
        self.store = store
        self.worker = worker_id()
        self._backlog: asyncio.Queue[Callable[[], Awaitable[object]]] | None = None
        self._writer: asyncio.Task[None] | None = None

    def _queue(self, write: Callable[[], Awaitable[object]]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._backlog is None or self._writer is None or self._writer.get_loop() is not loop:
            self._backlog = asyncio.Queue(_MAX_BACKLOG)
            self._writer = loop.create_task(self._write(self._backlog), name="agent-runtime-run-records")
        try:
            self._backlog.put_nowait(write)
        except asyncio.QueueFull:
            log.warning("run records: backlog full, a run record write was dropped")

    async def _write(self, backlog: asyncio.Queue[Callable[[], Awaitable[object]]]) -> None:
        while True:
            write = await backlog.get()
            try:
                await write()
            except AgentRuntimeError as exc:
                log.warning("run records: write failed: %s", exc.message)
            except Exception:
                log.exception("run records: write failed")
            finally:
                backlog.task_done()

    async def flush(self) -> None:
        """Wait until every queued write was applied."""
        if self._backlog is not None:
            await self._backlog.join()

    async def aclose(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if writer.get_loop() is asyncio.get_running_loop() and self._backlog is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._backlog.join(), 5.0)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, RuntimeError):
            await writer

    # -- RunObserver --------------------------------------------------------------------------------
    def run_started(self, context: AgentContext) -> None:
        if context.metadata.get(BACKGROUND_KEY):
            return
        if context.attempt == 1:
            run = new_run(context, status="running", background=False, worker=self.worker)
            self._queue(lambda: self.store.create(run))
            return
        changes: dict[str, Any] = {"status": "running", "attempts": context.attempt, "error": None}
        self._queue(lambda: self.store.transition(context.run_id, ("running", "error", "timeout"), **changes))

    def run_finished(self, context: AgentContext, result: AgentResult) -> None:
        if context.metadata.get(BACKGROUND_KEY):
            return
        changes: dict[str, Any] = {
            "status": run_status(result),
            "ended_at": time.time(),
            "output": result.output,
            "usage": result.usage.model_dump(),
            "attempts": context.attempt,
        }
        self._queue(lambda: self.store.transition(context.run_id, ("running",), **changes))

    def run_failed(self, context: AgentContext, error: AgentRuntimeError, duration_s: float) -> None:
        if context.metadata.get(BACKGROUND_KEY):
            return
        changes: dict[str, Any] = {
            "status": status_for_error(error.code),
            "ended_at": time.time(),
            "error": {"code": error.code, "message": error.message},
            "attempts": context.attempt,
        }
        self._queue(lambda: self.store.transition(context.run_id, ("running",), **changes))

    def tool_called(self, context: AgentContext, call: ToolCallRecord) -> None:
        return None
