"""The caught-up followers of one run event log object, and the one task that watches for them.

A follower reads a run's events by itself; once it has them all it waits here. One watcher task per
log object asks the backend, for every run some follower waits on, whether it moved past the
earliest of them (Redis: one ``XREAD BLOCK`` over all their streams; tables: one query, polled),
and wakes the followers it moved past. So a process makes one request at a time for its followers,
however many they are, and an append of this process wakes its followers at once (``wake``).
A follower also reads again by itself every ``recheck_s``: the watcher failing costs delay, not events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from agent_runtime.errors import AgentRuntimeError

__all__ = ["Following", "Moved", "Waiters"]

log = logging.getLogger("agent_runtime.runs")

Moved = Callable[[dict[str, int]], Awaitable[dict[str, int]]]
"""``{run: earliest position waited on}`` -> ``{run: its newest position}`` for the runs that moved
past it (may wait a while first: a blocking read, or the poll interval). A closed log counts as one
past its last event."""


@dataclass
class Following:
    """The readers of one run in this process. ``changed`` is set, and replaced, by each wake: a reader
    takes it (``mark``) before it reads, so a wake while it reads ends its next wait at once."""

    readers: int = 0
    waiting: list[int] = field(default_factory=list)
    """The positions of the readers waiting now."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def mark(self) -> asyncio.Event:
        return self.changed


class Waiters:
    def __init__(self, moved: Moved, *, recheck_s: float = 2.0) -> None:
        self._moved = moved
        self.recheck_s = recheck_s
        self._runs: dict[str, Following] = {}
        self._someone_waits = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Readers waiting now."""
        return sum(len(run.waiting) for run in self._runs.values())

    @contextlib.contextmanager
    def following(self, run: str) -> Iterator[Following]:
        """Count a reader of ``run`` in for as long as it reads."""
        state = self._runs.setdefault(run, Following())
        state.readers += 1
        try:
            yield state
        finally:
            state.readers -= 1
            if state.readers <= 0 and self._runs.get(run) is state:
                del self._runs[run]

    async def wait(self, state: Following, seen: int, mark: asyncio.Event) -> None:
        """Until the run moved past ``seen`` (at once if woken since ``mark`` was taken), or ``recheck_s``."""
        state.waiting.append(seen)
        self._someone_waits.set()
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(mark.wait(), self.recheck_s)
        finally:
            state.waiting.remove(seen)

    def wake(self, run: str) -> None:
        """Wake the readers of ``run`` (after an append, a close or a delete of this process)."""
        state = self._runs.get(run)
        if state is not None:
            state.changed.set()
            state.changed = asyncio.Event()

    async def _watch(self) -> None:
        while True:
            positions = {run: min(state.waiting) for run, state in self._runs.items() if state.waiting}
            if not positions:
                self._someone_waits.clear()
                await self._someone_waits.wait()
                continue
            try:
                moved = await self._moved(positions)
            except AgentRuntimeError as exc:  # readers read by themselves every recheck_s meanwhile
                log.warning("run event watcher: %s", exc.message)
                await asyncio.sleep(self.recheck_s)
                continue
            for run, newest in moved.items():
                state = self._runs.get(run)
                if state is not None and state.waiting and min(state.waiting) < newest:
                    self.wake(run)

    async def aclose(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
