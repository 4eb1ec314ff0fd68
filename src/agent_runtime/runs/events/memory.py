"""In-process run event log: for tests and single-process use (readers in other processes see nothing)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final

from agent_runtime.errors import EventsExpiredError
from agent_runtime.runs.events.base import DEFAULT_MAX_EVENTS, DEFAULT_TTL_S, LoggedEvent, RunEventLog, parse_seq
from agent_runtime.types import StreamEvent

__all__ = ["DEFAULT_MAX_RUNS", "MemoryRunEventLog"]

DEFAULT_MAX_RUNS: Final = 10_000
"""Runs whose events one process keeps in memory: its memory stays bounded whatever the ttl."""


@dataclass
class _Log:
    events: deque[LoggedEvent]
    next_seq: int = 1
    closed: bool = False
    touched: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryRunEventLog(RunEventLog):
    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_runs: int = DEFAULT_MAX_RUNS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl_s=ttl_s, max_events=max_events)
        self.max_runs = max_runs
        self._logs: dict[str, _Log] = {}
        self._clock = clock

    def _log(self, run_id: str) -> _Log:
        self._expire()
        log = self._logs.get(run_id)
        if log is None:
            while len(self._logs) >= self.max_runs:  # the oldest run's events go first
                self._wake(self._logs.pop(next(iter(self._logs))))
            log = self._logs[run_id] = _Log(deque(maxlen=self.max_events), touched=self._clock())
        return log

    def _expire(self) -> None:
        cutoff = self._clock() - self.ttl_s
        for run_id in [r for r, log in self._logs.items() if log.touched < cutoff]:
            self._wake(self._logs.pop(run_id))

    @staticmethod
    def _wake(log: _Log) -> None:
        log.changed.set()
        log.changed = asyncio.Event()

    async def append(self, run_id: str, event: StreamEvent) -> str:
        log = self._log(run_id)
        logged = LoggedEvent(str(log.next_seq), event)
        log.next_seq += 1
        log.events.append(logged)
        log.touched = self._clock()
        self._wake(log)
        return logged.id

    async def close(self, run_id: str) -> None:
        log = self._log(run_id)
        log.closed = True
        log.touched = self._clock()
        self._wake(log)

    async def read(self, run_id: str, *, after: str | None = None, follow: bool = True) -> AsyncIterator[LoggedEvent]:
        seen = parse_seq(after)
        while True:
            log = self._log(run_id)
            changed, closed = log.changed, log.closed  # as of this pass: what comes while we yield is not lost
            if log.events and seen and seen + 1 < int(log.events[0].id):
                raise EventsExpiredError(f"events of run {run_id} after {after} are no longer kept")
            for logged in [e for e in log.events if int(e.id) > seen]:
                seen = int(logged.id)
                yield logged
            if closed or not follow:
                return
            await changed.wait()

    async def delete(self, run_id: str) -> None:
        log = self._logs.pop(run_id, None)
        if log is not None:
            self._wake(log)
