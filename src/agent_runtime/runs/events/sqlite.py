"""SQLite run event log: two tables in a database file shared by the processes of one host (the
registry puts it beside the state database, in a file of its own: these writes come per token and
must not queue behind, nor hold up, the other state's).

``run_event_logs`` has a row per run (its last event number, whether it is closed, when it was last
written: the ttl counts from there); ``run_events`` the events, numbered per run in the transaction
that stores them. An append is one short ``BEGIN IMMEDIATE`` transaction run inline on the event loop
(a run appends every token: a hop to a thread per statement would cost more than the statement),
which also trims the run's oldest event beyond ``max_events``. Expired runs are deleted by a sweep
that an append starts at most every ``sweep_s``, in a thread on a connection of its own, one run per
transaction so no transaction holds the write lock for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from agent_runtime._sqlite import connect_sqlite_inline, sqlite_errors
from agent_runtime.runs.events.base import DEFAULT_MAX_EVENTS, DEFAULT_TTL_S
from agent_runtime.runs.events.polling import BATCH, SWEEP_RUNS, Batch, PolledRunEventLog
from agent_runtime.types import StreamEvent

__all__ = ["SQLiteRunEventLog"]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_event_logs (
    run_id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0,
    touched_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS run_event_logs_touched ON run_event_logs (touched_at);
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""
_NEXT = (
    "INSERT INTO run_event_logs (run_id, last_seq, touched_at) VALUES (?, 1, ?) ON CONFLICT (run_id)"
    " DO UPDATE SET last_seq = last_seq + 1, touched_at = excluded.touched_at RETURNING last_seq"
)
_CLOSE = (
    "INSERT INTO run_event_logs (run_id, last_seq, closed, touched_at) VALUES (?, 0, 1, ?) ON CONFLICT (run_id)"
    " DO UPDATE SET closed = 1, touched_at = excluded.touched_at"
)
_FETCH = (  # one statement, so one snapshot: "closed" and the events agree
    "SELECT l.closed, e.seq, e.event FROM run_event_logs l"
    " LEFT JOIN run_events e ON e.run_id = l.run_id AND e.seq > ?"
    " WHERE l.run_id = ? AND l.touched_at >= ? ORDER BY e.seq LIMIT ?"
)

_HEAD = "SELECT run_id, last_seq, closed FROM run_event_logs WHERE touched_at >= ?"
_HEADS = 500
"""Runs per watcher query (SQLite binds at most 32,766 parameters)."""


class SQLiteRunEventLog(PolledRunEventLog):
    """``path``: the SQLite database file; the other arguments are ``PolledRunEventLog``'s."""

    def __init__(
        self,
        path: Path | str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_events: int = DEFAULT_MAX_EVENTS,
        poll_min_s: float = 0.05,
        poll_max_s: float = 0.25,
        sweep_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            ttl_s=ttl_s,
            max_events=max_events,
            poll_min_s=poll_min_s,
            poll_max_s=poll_max_s,
            sweep_s=sweep_s,
            clock=clock,
        )
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._background: sqlite3.Connection | None = None
        self._background_lock = asyncio.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect_sqlite_inline(self.path, _SCHEMA)
        return self._conn

    async def append(self, run_id: str, event: StreamEvent) -> str:
        payload = event.model_dump_json()
        db = self._db()
        with sqlite_errors("run_events.append"), _immediate(db):
            (seq,) = db.execute(_NEXT, (run_id, self._clock())).fetchone()
            db.execute("INSERT INTO run_events (run_id, seq, event) VALUES (?, ?, ?)", (run_id, seq, payload))
            if seq > self.max_events:
                db.execute("DELETE FROM run_events WHERE run_id = ? AND seq <= ?", (run_id, seq - self.max_events))
        self._appended(run_id)
        return str(seq)

    async def close(self, run_id: str) -> None:
        with sqlite_errors("run_events.close"):
            self._db().execute(_CLOSE, (run_id, self._clock()))
        self._wake(run_id)

    async def _fetch(self, run_id: str, seen: int) -> Batch:
        with sqlite_errors("run_events.read"):
            rows = self._db().execute(_FETCH, (seen, run_id, self._clock() - self.ttl_s, BATCH)).fetchall()
        events = [(int(seq), StreamEvent.model_validate_json(raw)) for _, seq, raw in rows if seq is not None]
        return Batch(events, closed=bool(rows and rows[0][0]))

    async def _heads(self, run_ids: list[str]) -> dict[str, tuple[int, bool]]:
        heads: dict[str, tuple[int, bool]] = {}
        cutoff = self._clock() - self.ttl_s
        for start in range(0, len(run_ids), _HEADS):
            chunk = run_ids[start : start + _HEADS]
            sql = f"{_HEAD} AND run_id IN ({', '.join('?' * len(chunk))})"
            with sqlite_errors("run_events.watch"):
                rows = self._db().execute(sql, (cutoff, *chunk)).fetchall()
            heads.update((run_id, (int(last), bool(closed))) for run_id, last, closed in rows)
        return heads

    async def delete(self, run_id: str) -> None:
        await self._in_background("run_events.delete", lambda db: _drop(db, [run_id]))
        self._wake(run_id)

    async def sweep(self) -> int:
        cutoff = self._clock() - self.ttl_s

        def expired(db: sqlite3.Connection) -> int:
            rows = db.execute(
                "SELECT run_id FROM run_event_logs WHERE touched_at < ? LIMIT ?", (cutoff, SWEEP_RUNS)
            ).fetchall()
            return _drop(db, [run_id for (run_id,) in rows], cutoff=cutoff)

        return await self._in_background("run_events.sweep", expired)

    async def _in_background(self, operation: str, work: Callable[[sqlite3.Connection], int]) -> int:
        """Run ``work`` in a thread on the background connection (deletes may touch many rows)."""
        async with self._background_lock:
            if self._background is None:
                self._background = connect_sqlite_inline(self.path, _SCHEMA, busy_timeout_s=5.0)
            job = asyncio.ensure_future(asyncio.to_thread(work, self._background))
            try:
                with sqlite_errors(operation):
                    return await asyncio.shield(job)
            finally:
                if not job.done():  # cancelled: the thread keeps the connection until it is done
                    await asyncio.wait([job])

    async def aclose(self) -> None:
        await self._stop_tasks()
        for conn in (self._conn, self._background):
            if conn is not None:
                conn.close()
        self._conn = self._background = None


@contextlib.contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (the write lock up front) ... ``COMMIT``, rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _drop(db: sqlite3.Connection, run_ids: list[str], *, cutoff: float | None = None) -> int:
    """Delete these runs' logs, one transaction each; with ``cutoff``, only those still untouched since."""
    dropped = 0
    for run_id in run_ids:
        with _immediate(db):
            if cutoff is None:
                db.execute("DELETE FROM run_event_logs WHERE run_id = ?", (run_id,))
            elif not db.execute(
                "DELETE FROM run_event_logs WHERE run_id = ? AND touched_at < ?", (run_id, cutoff)
            ).rowcount:
                continue  # written again since the sweep looked: kept
            db.execute("DELETE FROM run_events WHERE run_id = ?", (run_id,))
            dropped += 1
    return dropped
