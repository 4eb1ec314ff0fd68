"""Joining a run's stream from any process: its logged events after an id, then the live ones.

Protocol-neutral: the native ``GET /v1/runs/{run_id}/stream`` and the Agent Protocol's join route
both read through ``join`` and shape the events their own way.

A reader follows the log until the run's writer closes it. A writer can die without closing it (its
process killed), and a run answered in its request without ``stream_resumable`` is not logged at
all, so the join also asks the run's record every ``poll_s`` whether it is still going: once it has
ended, the reader takes what the log still receives for ``grace_s`` (the writer appends the last
event just after the record's outcome) and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from agent_runtime.runs.events.base import LoggedEvent, RunEventLog

__all__ = ["DEFAULT_GRACE_S", "DEFAULT_POLL_S", "FOREGROUND_GRACE_S", "check_after", "join"]

DEFAULT_POLL_S: Final = 1.0
DEFAULT_GRACE_S: Final = 2.0
FOREGROUND_GRACE_S: Final = 0.5
"""A run answered in its request writes its log there, as its events come: little is in flight."""
_LAST: Final = frozenset({"final", "error"})


async def check_after(log: RunEventLog, run_id: str, after: str | None) -> None:
    """Raise ``EventsExpiredError`` now when ``after`` has left the log (before a response is sent)."""
    reader = log.read(run_id, after=after, follow=False)
    try:
        async for _ in reader:
            break
    finally:
        await reader.aclose()  # type: ignore[attr-defined]  # an async generator


async def join(
    log: RunEventLog,
    run_id: str,
    *,
    active: Callable[[], Awaitable[bool]],
    after: str | None = None,
    poll_s: float = DEFAULT_POLL_S,
    grace_s: float = DEFAULT_GRACE_S,
) -> AsyncIterator[LoggedEvent]:
    """The run's events after ``after`` until its log is closed, its last event (``final`` or
    ``error``) came, or ``grace_s`` after ``active()`` first answered ``False``.

    Raises:
        EventsExpiredError: ``after`` is no longer in the log.
    """
    reader = log.read(run_id, after=after, follow=True)
    pending: asyncio.Task[LoggedEvent] | None = None
    ends_at = None if await active() else time.monotonic() + grace_s
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(reader))
            wait = poll_s if ends_at is None else max(0.0, ends_at - time.monotonic())
            done, _ = await asyncio.wait({pending}, timeout=wait)
            if not done:
                if ends_at is not None:
                    return
                if not await active():
                    ends_at = time.monotonic() + grace_s
                continue
            task, pending = pending, None
            try:
                logged = task.result()
            except StopAsyncIteration:
                return
            yield logged
            if logged.event.type in _LAST:
                return
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        with contextlib.suppress(RuntimeError):
            await reader.aclose()  # type: ignore[attr-defined]
