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

from agent_runtime.accounting.entries import EntryKind, JournalEntry
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

    async def submit(self, entry: JournalEntry) -> bool:
        """Journal ``entry`` (raises ``JournalFullError`` when full), then try to apply it.

        Returns whether it was applied now; if not, it is retried later and nothing is lost.
        """
        if entry.kind not in self.appliers:
            raise ConfigurationError(f"no applier for accounting entries of kind {entry.kind!r}")
        self.journal.append(entry)
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

    async def run(self) -> None:
        """Retry loop: sleeps until the next entry is due or a new failure is reported, until ``close``."""
        while not self._closed:
            await self.drain()
            wait = self.journal.next_due_in()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
