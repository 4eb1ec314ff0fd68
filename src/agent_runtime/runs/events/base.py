"""The run event log seam: what a run streamed, kept for a bounded time so any process can join it.

A worker that executes a run appends each ``StreamEvent`` it yields, then ``close``s the run's log
when the run ended. A client joins with ``read``: the events after ``after`` (an id it was given, as
SSE ``id`` / ``Last-Event-ID``), then the new ones as they are appended, until the log is closed.
Events are stored protocol-neutral (``StreamEvent``); each protocol's routes shape them on the way out.

Bounds: at most ``max_events`` events per run (a longer run keeps its newest; a reader whose
``after`` fell out of the window gets ``EventsExpiredError``), each run's log lives ``ttl_s`` after
its last append. One module per backend, one contract suite (``tests/runs/test_events_contract.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from agent_runtime.errors import EventsExpiredError
from agent_runtime.types import StreamEvent

__all__ = ["DEFAULT_MAX_EVENTS", "DEFAULT_TTL_S", "LoggedEvent", "RunEventLog", "parse_seq"]

DEFAULT_TTL_S: Final = 3_600.0
DEFAULT_MAX_EVENTS: Final = 10_000


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One stored event: ``id`` orders the run's events (opaque; compare only by equality)."""

    id: str
    event: StreamEvent


class RunEventLog(ABC):
    """The events of runs on one backend.

    Args:
        ttl_s: how long a run's log is kept after its last append.
        max_events: events kept per run (the oldest go first).
    """

    def __init__(self, *, ttl_s: float = DEFAULT_TTL_S, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self.ttl_s = ttl_s
        self.max_events = max_events

    @abstractmethod
    async def append(self, run_id: str, event: StreamEvent) -> str:
        """Store ``event`` as the run's next one; its id."""

    @abstractmethod
    async def close(self, run_id: str) -> None:
        """No more events for this run: readers stop after its last one."""

    @abstractmethod
    def read(self, run_id: str, *, after: str | None = None, follow: bool = True) -> AsyncIterator[LoggedEvent]:
        """The run's events after ``after`` (all of them without it); with ``follow``, then the new
        ones until the log is closed. An unknown run yields nothing once it is closed or ``follow`` is off;
        ``EventsExpiredError`` when ``after`` is no longer in the window."""

    @abstractmethod
    async def delete(self, run_id: str) -> None:
        """Forget the run's events (a deleted run)."""

    async def aclose(self) -> None:
        """Release connections."""
        return None


def parse_seq(after: str | None) -> int:
    """The sequence number of an event id of the logs that number each run's events 1, 2, 3, ...
    (0 without one); ``EventsExpiredError`` for an id no such log gave out."""
    if after is None:
        return 0
    try:
        return max(0, int(after))
    except ValueError:
        raise EventsExpiredError(f"unknown event id {after!r}") from None
