"""``RunRollback``: drop what a rolled-back run left behind, as LangGraph's ``rollback`` does.

A run's LangGraph checkpoints carry its ``run_id`` in their metadata (queued runs put it in their
config, ``orchestration.executor``). Rolling a run back rewrites its session's thread without them
(every saver of this package: read the thread, delete it, put back the checkpoints of other runs,
under the session's run lock so no run writes meanwhile), then deletes the run's record. A run that
named no session ran on an implicit session of its own: that session goes entirely.

Called once the run has stopped: by the worker that executed it, or by the dispatcher for a run
that was still pending (an earlier attempt may have checkpointed).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from agent_runtime.errors import AgentRuntimeError, SessionNotFoundError
from agent_runtime.runs.base import RunRecordStore
from agent_runtime.runs.record import Run

if TYPE_CHECKING:
    from agent_runtime.sessions.manager import SessionManager

__all__ = ["RunRollback"]

log = logging.getLogger("agent_runtime.runs")


class RunRollback:
    """Args:
    sessions: where the runs' checkpoints are (``None``: runs have none; only records are deleted).
    """

    def __init__(self, store: RunRecordStore, sessions: SessionManager | None = None) -> None:
        self.store = store
        self.sessions = sessions

    async def __call__(self, run: Run) -> None:
        """Drop the run's checkpoints, then its record (a failure to drop is logged: the record goes anyway,
        so the session's next run is not held back forever)."""
        if self.sessions is not None and run.attempts > 0:  # a run never started wrote nothing
            try:
                await self._drop_checkpoints(self.sessions, run)
            except AgentRuntimeError as exc:
                log.warning("rollback of run %s: its checkpoints stay: %s", run.run_id, exc.message)
        await self.store.delete(run.run_id)

    async def _drop_checkpoints(self, sessions: SessionManager, run: Run) -> None:
        user = run.user or "local"  # whose session the executor opened (``orchestration.executor``)
        if run.session_id is None:
            with contextlib.suppress(SessionNotFoundError):
                await sessions.delete_session(run.run_id, tenant=run.tenant, user_id=user)
            return
        async with sessions.lock(run.session_id, tenant=run.tenant, user_id=user):
            try:
                session = await sessions.get_session(run.session_id, tenant=run.tenant, user_id=user)
            except SessionNotFoundError:
                return
            dropped = await drop_run_checkpoints(await sessions.saver(), session.key, run.run_id)
        if dropped:
            log.info("rollback of run %s dropped %d checkpoint(s) of session %s", run.run_id, dropped, session.id)


async def drop_run_checkpoints(saver: Any, thread_id: str, run_id: str) -> int:
    """Rewrite thread ``thread_id`` without the checkpoints ``run_id`` wrote; how many were dropped."""
    from agent_runtime.sessions._thread_copy import put_checkpoints

    found = [t async for t in saver.alist({"configurable": {"thread_id": thread_id}})]
    dropped = {t.config["configurable"]["checkpoint_id"] for t in found if (t.metadata or {}).get("run_id") == run_id}
    if not dropped:
        return 0
    kept = [t for t in found if t.config["configurable"]["checkpoint_id"] not in dropped]
    await saver.adelete_thread(thread_id)
    await put_checkpoints(saver, kept, thread_id, dropped=dropped)
    return len(dropped)
