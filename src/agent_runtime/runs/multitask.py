"""Double-texting: what a run submitted on a busy session does (``multitask_strategy``).

``reject`` (the default, 409 ``session_busy``), ``enqueue`` (runs after the session's active runs, in
order), ``interrupt`` (cancel the active run, keep its progress, then run), ``rollback`` (cancel the
active run, drop its progress, then run).

A session's background runs start in submission order, whichever worker takes them: a worker starts a
pending run only once no earlier run of its session is still active (``SessionGate``). The rule is
monotone (runs submitted later never block an earlier one), so two workers checking at the same time
cannot start a session's runs out of order, and the run record's compare-and-set still picks one
worker per run. Runs cancelled by ``interrupt`` / ``rollback`` block the new run until they ended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.runs.base import RunRecordStore
from agent_runtime.runs.queue.base import Delivery, RunQueue
from agent_runtime.runs.record import Run

__all__ = [
    "DEFAULT_STRATEGY",
    "FOREGROUND_STALE_S",
    "STRATEGIES",
    "MultitaskStrategy",
    "Parked",
    "SessionGate",
    "SessionKey",
    "active_runs",
    "session_of",
]

MultitaskStrategy = Literal["reject", "enqueue", "interrupt", "rollback"]
STRATEGIES: Final[tuple[str, ...]] = get_args(MultitaskStrategy)
DEFAULT_STRATEGY: Final[MultitaskStrategy] = "reject"
FOREGROUND_STALE_S: Final = 3_600.0
"""A foreground run's record still ``running`` after this long is a dead process's leftover (no lease
tells otherwise): it no longer makes its session busy."""
log = logging.getLogger("agent_runtime.runs")


def _blocking(run: Run, now: float) -> bool:
    """Whether an active record makes its session busy: pending, running on a lease, or a live foreground run."""
    if run.status == "pending":
        return True
    if run.status != "running":
        return False
    return run.lease_until is not None or (run.started_at or run.created_at) > now - FOREGROUND_STALE_S


SessionKey = tuple[str, str | None, str]
"""``(tenant, user, session_id)``: a client-chosen session id names a session of its user (``sessions``)."""


async def active_runs(
    store: RunRecordStore, session: SessionKey, *, before: Run | None = None, now: float | None = None
) -> list[Run]:
    """The session's pending and running runs, oldest first (with ``before``: only those submitted earlier)."""
    now = time.time() if now is None else now
    tenant, user, session_id = session
    runs = await store.active(tenant, session_id)
    found = [r for r in runs if r.user == user and _blocking(r, now) and (before is None or _earlier(r, before))]
    return sorted(found, key=lambda r: (r.created_at, r.run_id))


def session_of(run: Run) -> SessionKey | None:
    return (run.tenant, run.user, run.session_id) if run.session_id is not None else None


def _earlier(run: Run, than: Run) -> bool:
    return run.run_id != than.run_id and (run.created_at, run.run_id) < (than.created_at, than.run_id)


@dataclass(frozen=True)
class Parked:
    """A delivery a worker holds back: its session is busy with an earlier run, or it is not due yet."""

    delivery: Delivery
    created_at: float
    session: SessionKey | None
    due: float | None = None


@dataclass
class SessionGate:
    """The deliveries one worker holds back until their turn, and the check that holds them.

    Args:
        limit: deliveries held at most (the queue's bound); past it a delivery goes back to the queue, and
            the worker takes no more until some were released.
    """

    store: RunRecordStore
    queue: RunQueue
    limit: int = 10_000
    clock: Callable[[], float] = time.time
    parked: dict[str, Parked] = field(default_factory=dict)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self.parked

    def __len__(self) -> int:
        return len(self.parked)

    @property
    def full(self) -> bool:
        return len(self.parked) >= self.limit

    async def hold(self, delivery: Delivery) -> bool:
        """Park ``delivery`` when its run is pending and may not start yet; ``False``: go on and claim it."""
        run = await self.store.get(delivery.run_id)
        if run is None or run.status != "pending":
            return False  # the claim decides
        if self.full:
            log.warning("run %s: %d runs parked already; handed back to the queue", run.run_id, len(self.parked))
            await self.queue.release([delivery])
            return True
        now = self.clock()
        session = session_of(run)
        due = run.not_before if run.not_before is not None and run.not_before > now else None
        if due is None and session is not None:
            blocked = await active_runs(self.store, session, before=run, now=now)
            if not blocked:
                return False
        elif due is None:
            return False
        self.parked[run.run_id] = Parked(delivery, run.created_at, session, due)
        return True

    async def wake(self, session: SessionKey | None = None) -> None:
        """Hand the deliveries whose turn may have come back to the queue (waking a waiting ``take``)."""
        deliveries = self.release(session)
        if deliveries:
            try:
                await self.queue.release(deliveries)
            except AgentRuntimeError as exc:  # still pending: found again by a scan or taken over when idle
                log.warning("run queue: release of parked runs failed: %s", exc.message)

    def release(self, session: SessionKey | None = None) -> list[Delivery]:
        """The deliveries to check again: the oldest of each session (or of ``session`` only), and those due.

        Runs behind the oldest of their session stay parked: they wait for it anyway."""
        now = self.clock()
        oldest: dict[SessionKey, Parked] = {}
        due: list[Parked] = []
        for held in self.parked.values():
            if held.due is not None:
                if held.due <= now:
                    due.append(held)
            elif held.session is not None and (session is None or held.session == session):
                first = oldest.get(held.session)
                if first is None or held.created_at < first.created_at:
                    oldest[held.session] = held
        out = [*due, *oldest.values()]
        for held in out:
            self.parked.pop(held.delivery.run_id, None)
        return [held.delivery for held in out]

    def drain(self) -> list[Delivery]:
        """Every parked delivery (the worker is stopping: they go back to the queue)."""
        out = [held.delivery for held in self.parked.values()]
        self.parked.clear()
        return out
