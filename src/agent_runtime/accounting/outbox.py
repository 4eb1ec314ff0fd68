"""The accounting outbox: journal first, then apply to the state backend, then forget.

``submit`` makes the entry durable and tries to apply it at once; a failed apply stays in the journal
and ``drain`` retries it with exponential backoff (``run`` loops until closed). ``replay`` applies
everything a journal still holds, as a restarted worker does at start. Appliers must be idempotent by
the entry's ``op_id``: a crash between apply and ``done`` replays an entry already applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from agent_runtime.accounting.entries import EntryKind, JournalEntry, JournalFullError
from agent_runtime.accounting.journal import AccountingJournal
from agent_runtime.errors import ConfigurationError

__all__ = ["AccountingOutbox", "Applier"]

Applier = Callable[[JournalEntry], Awaitable[None]]
_log = logging.getLogger("agent_runtime.accounting")


class AccountingOutbox:
    """Args:
    journal: where entries wait.
    appliers: one idempotent ``apply(entry)`` per entry kind.
    backoff_s / max_backoff_s: first retry delay, doubled per failed try up to the maximum.
    """

    def __init__(
        self,
        journal: AccountingJournal,
        appliers: Mapping[EntryKind, Applier],
        *,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.journal = journal
        self.appliers = dict(appliers)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    def check_capacity(self) -> None:
        """Refuse a new run while the journal is full (``JournalFullError``, 503): admitted runs still
        journal their settle, so the bound is exceeded by at most the runs in flight."""
        held = self.journal.size()
        if held >= self.journal.max_entries:
            raise JournalFullError(
                f"the accounting journal holds {held} unapplied entries (its maximum): "
                "new runs are refused until the state backend is back",
                retry_after=5.0,
            )

    async def submit(self, entry: JournalEntry) -> bool:
        """Journal ``entry`` (raises ``JournalFullError`` when full), then try to apply it.

        Returns whether it was applied now; if not, it is retried later and nothing is lost.
        """
        if entry.kind not in self.appliers:
            raise ConfigurationError(f"no applier for accounting entries of kind {entry.kind!r}")
        self.journal.append(entry)
        self.start()
        return await self._apply(entry, tries=0)

    async def _apply(self, entry: JournalEntry, *, tries: int) -> bool:
        try:
            await asyncio.shield(self.appliers[entry.kind](entry))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delay = min(self.max_backoff_s, self.backoff_s * 2**tries)
            _log.warning(
                "accounting %s kept in the journal (retry in %.1fs): %s", entry.op_id, delay, type(exc).__name__
            )
            self.journal.defer(entry, delay)
            self._wake.set()
            return False
        self.journal.done(entry)
        return True

    async def drain(self, *, everything: bool = False) -> int:
        """Apply the due entries (all with ``everything``); stop at the first failure of a pass.

        Returns how many were applied.
        """
        applied = 0
        while batch := self.journal.due(everything=everything):
            for entry, tries in batch:
                if not await self._apply(entry, tries=tries):
                    return applied
                applied += 1
        return applied

    async def replay(self) -> int:
        """Apply everything the journal holds (a restarted worker's first step)."""
        return await self.drain(everything=True)

    def start(self) -> None:
        """Start the background loop (replay, then retries) on the running loop, once."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="agent-runtime-accounting-outbox")

    async def run(self) -> None:
        """Replay the journal, then retry failed entries when due (or when a new failure is reported),
        until ``aclose``."""
        with contextlib.suppress(Exception):  # a failure was deferred in the journal and is retried below
            await self.replay()
        while not self._closed:
            await self.drain()
            wait = self.journal.next_due_in()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def aclose(self) -> None:
        """Stop the loop (one last pass over what is due) and close the journal; the rest waits for a
        restart. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.drain()
        self.journal.close()
