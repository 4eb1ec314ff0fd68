"""The accounting journal: a bounded, durable SQLite table of writes not yet applied to the state backend.

One small table in its own file under ``DATA_DIR`` (WAL; a committed row survives the process being
killed). An entry is appended before the run's response is returned and deleted once applied; a failed
apply stays with a later ``next_at`` (backoff). Transactions are a statement or two, run inline on the
event loop like the SQLite quota ledger's.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from agent_runtime._sqlite import connect_sqlite_inline, sqlite_errors
from agent_runtime.accounting.entries import JournalEntry
from agent_runtime.errors import ValidationError

__all__ = ["DEFAULT_MAX_ENTRIES", "AccountingJournal"]

DEFAULT_MAX_ENTRIES = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounting_journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    UNIQUE (run_id, attempt, kind)
);
"""


class AccountingJournal:
    """Append, list due, mark done, defer. ``max_entries`` bounds the unapplied entries it holds."""

    def __init__(
        self, path: Path | str, *, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.time
    ) -> None:
        if max_entries < 1:
            raise ValidationError("the accounting journal must hold at least one entry")
        self.path = path
        self.max_entries = max_entries
        self._clock = clock
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect_sqlite_inline(self.path, _SCHEMA)
        return self._conn

    def append(self, entry: JournalEntry) -> bool:
        """Durably record ``entry`` (committed when this returns); ``False`` if the same
        ``(run_id, attempt, kind)`` is already held. Never refuses for size: what a finished run owes
        is always kept; new runs are refused instead (``AccountingOutbox.check_capacity``).

        Raises:
            BackendError: the journal's file cannot be written.
        """
        with sqlite_errors("accounting.journal.append"):
            cur = self._db().execute(
                "INSERT INTO accounting_journal (run_id, attempt, kind, payload, next_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, attempt, kind) DO NOTHING",
                (entry.run_id, entry.attempt, entry.kind, entry.dumps(), self._clock()),
            )
        return cur.rowcount == 1

    def due(self, *, limit: int = 100, everything: bool = False) -> list[tuple[JournalEntry, int]]:
        """Oldest entries whose retry time has come (all of them with ``everything``), with their tries."""
        sql = "SELECT run_id, attempt, kind, payload, tries FROM accounting_journal"
        args: tuple[float | int, ...] = (limit,)
        if not everything:
            sql += " WHERE next_at <= ?"
            args = (self._clock(), limit)
        with sqlite_errors("accounting.journal.due"):
            rows = self._db().execute(sql + " ORDER BY seq LIMIT ?", args).fetchall()
        return [(JournalEntry(r[0], int(r[1]), r[2], json.loads(r[3])), int(r[4])) for r in rows]

    def done(self, entry: JournalEntry) -> None:
        """Forget an applied entry."""
        with sqlite_errors("accounting.journal.done"):
            self._db().execute(
                "DELETE FROM accounting_journal WHERE run_id = ? AND attempt = ? AND kind = ?",
                (entry.run_id, entry.attempt, entry.kind),
            )

    def defer(self, entry: JournalEntry, delay_s: float) -> None:
        """Count a failed apply and retry the entry no earlier than ``delay_s`` from now."""
        with sqlite_errors("accounting.journal.defer"):
            self._db().execute(
                "UPDATE accounting_journal SET tries = tries + 1, next_at = ? "
                "WHERE run_id = ? AND attempt = ? AND kind = ?",
                (self._clock() + delay_s, entry.run_id, entry.attempt, entry.kind),
            )

    def size(self) -> int:
        with sqlite_errors("accounting.journal.size"):
            (held,) = self._db().execute("SELECT COUNT(*) FROM accounting_journal").fetchone()
        return int(held)

    def next_due_in(self) -> float | None:
        """Seconds until the earliest entry is due (0 if one is due now), ``None`` when empty."""
        with sqlite_errors("accounting.journal.next"):
            (at,) = self._db().execute("SELECT MIN(next_at) FROM accounting_journal").fetchone()
        return None if at is None else max(0.0, float(at) - self._clock())

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
