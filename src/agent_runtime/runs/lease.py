"""Leases on running background runs: who executes a run, until when, and taking over from the dead.

A worker that claims a run writes ``worker`` and ``lease_until = now + lease_s`` on its record with a
compare-and-set, and renews the lease every ``heartbeat_s`` while it executes (``LeaseKeeper``). A
run whose lease ran out is claimable again by any worker; the claim that wins counts one more
attempt and one recovery. A renewal that no longer matches (another worker took the run over, or
it was cancelled meanwhile) tells the holder to stop; a renewal that sees ``cancel_requested`` (a
cancel received by another worker) does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.runs.base import RunRecordStore, lease_expired
from agent_runtime.runs.queue.base import Delivery, RunQueue
from agent_runtime.runs.record import Run

__all__ = ["Claim", "LeaseKeeper", "StopReason", "claim"]

log = logging.getLogger("agent_runtime.runs")

StopReason = Literal["cancelled", "rollback", "lost"]


@dataclass(frozen=True)
class Claim:
    """A run this worker now holds."""

    run: Run
    recovered: bool
    """Taken over from a worker whose lease expired (it died or stalled)."""
    resumed: bool
    """An earlier attempt ran (a take-over, or a run put back on shutdown): continue from its checkpoint."""
    exhausted: bool = False
    """The run had used its ``max_attempts``: it was ended ``error`` instead of claimed."""


async def claim(
    store: RunRecordStore, run_id: str, *, worker: str, lease_s: float, max_attempts: int, now: float
) -> Claim | None:
    """Take a pending run, or a running one whose lease expired; ``None`` when it is not claimable."""
    run = await store.get(run_id)
    if run is None:
        return None
    recovered = lease_expired(run, now)
    if run.status != "pending" and not recovered:
        return None
    expected = ("running",) if recovered else ("pending",)
    guard = {"worker": run.worker, "lease_until": run.lease_until} if recovered else None
    if run.attempts >= max_attempts:
        error = {"code": "max_attempts", "message": f"run gave up after {run.attempts} attempt(s) (max_attempts)"}
        ended = await store.transition(
            run_id, expected, match=guard, status="error", ended_at=time.time(), error=error, lease_until=None
        )
        return None if ended is None else Claim(ended, recovered, resumed=False, exhausted=True)
    taken = await store.transition(
        run_id,
        expected,
        match=guard,
        status="running",
        worker=worker,
        lease_until=now + lease_s,
        attempts=run.attempts + 1,
        recoveries=run.recoveries + int(recovered),
        started_at=run.started_at or time.time(),
        error=None,
    )
    return None if taken is None else Claim(taken, recovered, resumed=run.attempts > 0)


@dataclass
class _Held:
    delivery: Delivery
    stop: Callable[[StopReason], object]


class LeaseKeeper:
    """Renews the leases of the runs this worker executes, every ``heartbeat_s``, in one task.

    Args:
        clock: wall clock of the leases (injectable for tests).
    """

    def __init__(
        self,
        store: RunRecordStore,
        queue: RunQueue,
        *,
        worker: str,
        lease_s: float,
        heartbeat_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.queue = queue
        self.worker = worker
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> list[str]:
        return list(self._held)

    def hold(self, delivery: Delivery, stop: Callable[[StopReason], object]) -> None:
        """Keep ``delivery``'s run leased until ``drop``; ``stop`` is called when it must stop here."""
        self._held[delivery.run_id] = _Held(delivery, stop)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._beat(), name="agent-runtime-run-leases")

    def drop(self, run_id: str) -> None:
        self._held.pop(run_id, None)

    async def _beat(self) -> None:
        while self._held:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.renew()
            except AgentRuntimeError as exc:  # the lease may lapse: another worker then resumes the run
                log.warning("renewing %d run lease(s) failed: %s", len(self._held), exc.message)

    async def renew(self) -> None:
        """Extend every held lease now; stop the runs that are no longer this worker's."""
        until = self._clock() + self.lease_s
        for run_id, held in list(self._held.items()):
            renewed = await self.store.transition(
                run_id, ("running",), match={"worker": self.worker}, lease_until=until
            )
            if renewed is None:
                log.warning("run %s is no longer held by this worker (taken over or ended): stopping it", run_id)
                self._held.pop(run_id, None)
                held.stop("lost")
            elif renewed.cancel_requested:
                held.stop("rollback" if renewed.cancel_action == "rollback" else "cancelled")
        await self.queue.touch([held.delivery for held in self._held.values()])

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task
