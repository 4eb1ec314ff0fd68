"""What a finished background run leaves on its thread (session): a failed run marks it ``error`` (a
thread's status follows its runs), a successful one clears that; a stateless run's temporary thread is
deleted unless the client asked to keep it (``on_completion``).

Registered on the worker of every process that executes runs (``Runtime.start_dispatcher``), so the
thread is updated wherever the run ended.
"""

from __future__ import annotations

import logging

from agent_runtime.errors import AgentRuntimeError, SessionNotFoundError
from agent_runtime.runs.record import Run
from agent_runtime.runs.recorder import KWARGS_KEY
from agent_runtime.sessions.threads import Threads

__all__ = ["FAILED", "WAITED_KEY", "ThreadOutcome", "temporary"]

log = logging.getLogger("agent_runtime.runs")

FAILED = frozenset({"error", "timeout"})
WAITED_KEY = "waited"
"""Run kwargs: a request waits on the run and deletes its temporary thread itself, after reading it."""


def temporary(run: Run) -> bool:
    """Whether the run's thread is a stateless run's, to delete once the run is over."""
    kwargs = run.metadata.get(KWARGS_KEY) or {}
    return kwargs.get("on_completion") == "delete"


class ThreadOutcome:
    """The ``RunWorker.on_finished`` hook keeping threads in step with their runs."""

    def __init__(self, threads: Threads) -> None:
        self.threads = threads

    async def finished(self, run: Run) -> None:
        if run.session_id is None:
            return
        sessions = self.threads.sessions
        try:
            session = await sessions.get_session(run.session_id, tenant=run.tenant, user_id=run.user)
            if temporary(run) and run.status != "interrupted":
                if not (run.metadata.get(KWARGS_KEY) or {}).get(WAITED_KEY):
                    await sessions.delete_session(session.id, tenant=session.tenant, user_id=session.user_id)
                return
            error = str((run.error or {}).get("message") or run.status) if run.status in FAILED else None
            await self.threads.mark_run(session, error)
        except SessionNotFoundError:
            return
        except AgentRuntimeError as exc:
            log.warning("run %s: could not update its thread %s: %s", run.run_id, run.session_id, exc.message)
