"""The follow loop of the run event logs kept in database tables (SQLite, PostgreSQL).

Each run's events are numbered 1, 2, 3, ... in the transaction that stores them, so a reader knows
it missed nothing when the first event it gets after ``seen`` is ``seen + 1`` (anything else: the
events in between were trimmed away, ``EventsExpiredError``). Caught-up readers wait in ``Waiters``:
an append of this log object wakes them at once; for appends of other processes its watcher polls
the runs' rows, one query for all the runs this process's readers wait on, every ``poll_min_s``
doubling up to ``poll_max_s`` while nothing moves (a bounded delay, and a load that does not grow
with the number of readers).
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final

from agent_runtime.errors import AgentRuntimeError, EventsExpiredError
from agent_runtime.runs.events.base import DEFAULT_MAX_EVENTS, DEFAULT_TTL_S, LoggedEvent, RunEventLog, parse_seq
from agent_runtime.runs.events.waiting import Waiters
from agent_runtime.types import StreamEvent

__all__ = ["BATCH", "SWEEP_RUNS", "Batch", "PolledRunEventLog"]

log = logging.getLogger("agent_runtime.runs")

BATCH: Final = 100
"""Events fetched per query: a reader far behind catches up in pages, its memory bounded."""
SWEEP_RUNS: Final = 100
"""Expired runs one sweep deletes at most (the next sweep takes the rest)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """What one query found: events after the reader's position (oldest first, at most ``BATCH``),
    and whether the run's log was closed (read in the same snapshot as the events)."""

    events: list[tuple[int, StreamEvent]]
    closed: bool


class PolledRunEventLog(RunEventLog):
    """A ``RunEventLog`` whose ``read`` pages through ``_fetch`` and waits between pages.

    Expired runs are deleted by ``sweep``, which appends start in the background at most every ``sweep_s``.

    Args:
        poll_min_s: the watcher's first interval between polls for other processes' appends.
        poll_max_s: its longest (the interval doubles up to it while nothing moves).
        recheck_s: see ``Waiters``.
        sweep_s: how often appends start a sweep (default: the ttl, at most a minute).
        clock: wall-clock time (shared by the processes that share the database).
    """

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_events: int = DEFAULT_MAX_EVENTS,
        poll_min_s: float = 0.05,
        poll_max_s: float = 0.25,
        sweep_s: float | None = None,
        recheck_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(ttl_s=ttl_s, max_events=max_events)
        self.poll_min_s = poll_min_s
        self.poll_max_s = max(poll_min_s, poll_max_s)
        self.sweep_s = min(ttl_s, 60.0) if sweep_s is None else sweep_s
        self._clock = clock
        self._poll_s = poll_min_s
        self._waiters = Waiters(self._moved, recheck_s=recheck_s)
        self._swept_at = clock()
        self._sweeping: asyncio.Task[None] | None = None

    @abstractmethod
    async def _fetch(self, run_id: str, seen: int) -> Batch:
        """The run's events numbered above ``seen`` (up to ``BATCH``), nothing for an unknown or expired run."""

    @abstractmethod
    async def _heads(self, run_ids: list[str]) -> dict[str, tuple[int, bool]]:
        """Of these runs, those known and not expired: their last event number, and whether closed."""

    @abstractmethod
    async def sweep(self) -> int:
        """Delete runs whose ttl ran out (up to ``SWEEP_RUNS`` of them); how many."""

    def _appended(self, run_id: str) -> None:
        """After an append: wake this process's followers, and start a sweep when one is due."""
        self._wake(run_id)
        now = self._clock()
        if now - self._swept_at < self.sweep_s or (self._sweeping is not None and not self._sweeping.done()):
            return
        self._swept_at = now
        self._sweeping = asyncio.get_running_loop().create_task(self._sweep_quietly())

    async def _sweep_quietly(self) -> None:
        try:
            await self.sweep()
        except AgentRuntimeError as exc:  # the next sweep tries again; appends go on meanwhile
            log.warning("run event log sweep failed: %s", exc.message)

    async def _stop_tasks(self) -> None:
        """Stop the watcher and wait for a sweep in flight (before closing connections)."""
        await self._waiters.aclose()
        if self._sweeping is not None:
            await asyncio.gather(self._sweeping, return_exceptions=True)
            self._sweeping = None

    def _wake(self, run_id: str) -> None:
        """Wake this process's readers of ``run_id`` (after an append, a close or a delete)."""
        self._waiters.wake(run_id)

    async def _moved(self, positions: dict[str, int]) -> dict[str, int]:
        """The watcher's poll: after the current interval, the runs that moved past ``positions``
        (a closed run counts as one past its last event)."""
        await asyncio.sleep(self._poll_s)
        heads = await self._heads(list(positions))
        moved = {run: last + closed for run, (last, closed) in heads.items() if last + closed > positions[run]}
        self._poll_s = self.poll_min_s if moved else min(self._poll_s * 2, self.poll_max_s)
        return moved

    async def read(self, run_id: str, *, after: str | None = None, follow: bool = True) -> AsyncIterator[LoggedEvent]:
        seen = parse_seq(after)
        with self._waiters.following(run_id) as state:
            while True:
                mark = state.mark()  # taken before the query: an append during it ends the wait below at once
                batch = await self._fetch(run_id, seen)
                if batch.events and seen and batch.events[0][0] > seen + 1:
                    raise EventsExpiredError(f"events of run {run_id} after {after} are no longer kept")
                for seq, event in batch.events:
                    seen = seq
                    yield LoggedEvent(str(seq), event)
                if len(batch.events) < BATCH:
                    if batch.closed or not follow:
                        return
                    await self._waiters.wait(state, seen, mark)
