"""PostgreSQL run event log: shared by a fleet, in tables ``ar_run_event_logs`` and ``ar_run_events``
(schema migration 3).

As on SQLite, a row per run holds its last event number, whether it is closed and when it was last
written. An append is one statement (data-modifying CTEs): bump the run's number, which locks its
row until the statement commits, so a run's events commit in their numbers' order and a reader never
sees event ``n + 1`` before ``n``; insert the event; trim the run to ``max_events``. Readers of
other processes find new events by polling (``PolledRunEventLog``: one indexed query per process per
interval, no connection held between polls). Events are stored as JSON text: they are read back
whole, never queried inside. Appends do not wait for their commit to reach the disk (see ``_APPEND``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent_runtime._postgres import PgClient
from agent_runtime.runs.events.base import DEFAULT_MAX_EVENTS, DEFAULT_TTL_S
from agent_runtime.runs.events.polling import BATCH, SWEEP_RUNS, Batch, PolledRunEventLog
from agent_runtime.settings import PostgresSettings
from agent_runtime.types import StreamEvent

__all__ = ["PostgresRunEventLog"]

_APPEND = """
WITH no_flush_wait AS (
    SELECT set_config('synchronous_commit', 'off', true)
), next AS (
    INSERT INTO ar_run_event_logs (run_id, last_seq, touched_at) VALUES (%(run)s, 1, %(now)s)
    ON CONFLICT (run_id) DO UPDATE SET last_seq = ar_run_event_logs.last_seq + 1, touched_at = excluded.touched_at
    RETURNING last_seq
), added AS (
    INSERT INTO ar_run_events (run_id, seq, event) SELECT %(run)s, last_seq, %(event)s FROM next RETURNING seq
), trimmed AS (
    DELETE FROM ar_run_events WHERE run_id = %(run)s AND seq <= (SELECT seq FROM added) - %(keep)s
)
SELECT seq FROM added, no_flush_wait
"""
"""A run appends every token: waiting for the WAL flush of each (a disk sync, milliseconds) would
slow the run itself, so the statement's transaction commits without (``synchronous_commit`` off for
it alone). A PostgreSQL crash may then lose the events of the last instant; the run's record and
outcome, written by the run store, keep full durability."""
_CLOSE = (
    "INSERT INTO ar_run_event_logs (run_id, last_seq, closed, touched_at) VALUES (%s, 0, true, %s)"
    " ON CONFLICT (run_id) DO UPDATE SET closed = true, touched_at = excluded.touched_at"
)
_FETCH = (  # one statement, so one snapshot: "closed" and the events agree
    "SELECT l.closed, e.seq, e.event FROM ar_run_event_logs l"
    " LEFT JOIN ar_run_events e ON e.run_id = l.run_id AND e.seq > %s"
    " WHERE l.run_id = %s AND l.touched_at >= %s ORDER BY e.seq LIMIT %s"
)
_HEADS = "SELECT run_id, last_seq, closed FROM ar_run_event_logs WHERE touched_at >= %s AND run_id = ANY(%s)"
_DELETE = """
WITH gone AS (DELETE FROM ar_run_event_logs WHERE run_id = %(run)s)
DELETE FROM ar_run_events WHERE run_id = %(run)s
"""
_SWEEP = """
WITH gone AS (
    DELETE FROM ar_run_event_logs WHERE run_id IN (
        SELECT run_id FROM ar_run_event_logs WHERE touched_at < %(cutoff)s LIMIT %(runs)s FOR UPDATE SKIP LOCKED
    ) RETURNING run_id
), events AS (
    DELETE FROM ar_run_events WHERE run_id IN (SELECT run_id FROM gone)
)
SELECT count(*) FROM gone
"""


class PostgresRunEventLog(PolledRunEventLog):
    """``url`` / ``settings``: the database and its pool; the other arguments are ``PolledRunEventLog``'s."""

    def __init__(
        self,
        url: str,
        settings: PostgresSettings | None = None,
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
        self._db = PgClient(url, settings, name="run_events")

    async def append(self, run_id: str, event: StreamEvent) -> str:
        args = {"run": run_id, "now": self._clock(), "event": event.model_dump_json(), "keep": self.max_events}
        ((seq,),) = await self._db.fetch("run_events.append", _APPEND, args)
        self._appended(run_id)
        return str(seq)

    async def close(self, run_id: str) -> None:
        await self._db.execute("run_events.close", _CLOSE, (run_id, self._clock()))
        self._wake(run_id)

    async def _fetch(self, run_id: str, seen: int) -> Batch:
        rows = await self._db.fetch("run_events.read", _FETCH, (seen, run_id, self._clock() - self.ttl_s, BATCH))
        events = [(int(seq), StreamEvent.model_validate_json(raw)) for _, seq, raw in rows if seq is not None]
        return Batch(events, closed=bool(rows and rows[0][0]))

    async def _heads(self, run_ids: list[str]) -> dict[str, tuple[int, bool]]:
        rows = await self._db.fetch("run_events.watch", _HEADS, (self._clock() - self.ttl_s, run_ids))
        return {run_id: (int(last), bool(closed)) for run_id, last, closed in rows}

    async def delete(self, run_id: str) -> None:
        await self._db.execute("run_events.delete", _DELETE, {"run": run_id})
        self._wake(run_id)

    async def sweep(self) -> int:
        cutoff = self._clock() - self.ttl_s
        ((count,),) = await self._db.fetch("run_events.sweep", _SWEEP, {"cutoff": cutoff, "runs": SWEEP_RUNS})
        return int(count)

    async def aclose(self) -> None:
        await self._stop_tasks()
        await self._db.aclose()
