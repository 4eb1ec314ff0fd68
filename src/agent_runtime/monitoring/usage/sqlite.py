"""Usage ledger in an SQLite file: survives restarts, shared by the processes of one host.

Writes are behind the run, batched: ``add`` queues the record and returns; one writer task per
store sums the queued records per ledger cell and writes them in one ``executemany`` and one commit.
Reads (``records``, ``report``, ``spend``) first wait for what this store queued, so a process
always reads its own writes. Why not wait for the commit in ``add``: SQLite runs in aiosqlite's
thread, and every hop to it (queue, each ``sqlite3_step``, the answer) must win the GIL back from
a busy event loop, up to a switch interval (5 ms) each; a request waiting for that stalled tens of
ms under load (p99 at 64 concurrent runs: 100-140 ms waiting, 91 ms not). The price: records still
queued when the process is killed (a few ms of runs) are lost, like the usage of a run killed
mid-way. Shutdown (``aclose``) writes everything queued. Past ``MAX_BACKLOG`` queued records
``add`` waits for the writer, so a slow disk slows runs down instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from agent_runtime._sqlite import connect_sqlite, sqlite_fetch, sqlite_ping, sqlite_transaction
from agent_runtime.monitoring.usage.base import UsageQuery, UsageRecord, UsageStore

__all__ = ["MAX_BACKLOG", "SqliteUsageStore"]

log = logging.getLogger("agent_runtime.usage")

MAX_BACKLOG = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_ledger (
    tenant TEXT NOT NULL,
    day TEXT NOT NULL,
    user_id TEXT NOT NULL,
    template TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    runs INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, day, user_id, template, model)
);
CREATE TABLE IF NOT EXISTS usage_applied (
    op_id TEXT PRIMARY KEY,
    day TEXT NOT NULL
);
"""

# One statement, so concurrent writers (other processes included) add to a cell instead of overwriting it.
_UPSERT = """
INSERT INTO usage_ledger (tenant, day, user_id, template, model, input_tokens, output_tokens, cached_tokens,
                          cost_usd, runs)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, day, user_id, template, model) DO UPDATE SET
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cached_tokens = cached_tokens + excluded.cached_tokens,
    cost_usd = cost_usd + excluded.cost_usd,
    runs = runs + excluded.runs
"""


_CELL = 5  # (tenant, day, user, template, model) come first in the upsert's parameters; sums follow


def _merged(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One parameter row per ledger cell, its amounts summed (the upsert adds them up the same way)."""
    cells: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        cell = cells.get(row[:_CELL])
        if cell is None:
            cells[row[:_CELL]] = list(row)
        else:
            for i in range(_CELL, len(row)):
                cell[i] += row[i]
    return [tuple(cell) for cell in cells.values()]


class SqliteUsageStore(UsageStore):
    """The ledger in table ``usage_ledger`` of ``path`` (may be the runtime's shared database file)."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._conn: Any = None
        self._open_lock = asyncio.Lock()
        self._queued: list[tuple[Any, ...]] = []
        self._tx_lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None
        self._added = self._settled = 0  # records queued so far / written or given up on
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.lost = 0
        """Records dropped because their write kept failing (each loss is logged)."""

    async def _connection(self) -> Any:
        if self._conn is None:
            async with self._open_lock:
                if self._conn is None:
                    self._conn = await connect_sqlite(self.path, _SCHEMA)
        return self._conn

    async def _add(self, record: UsageRecord, op_id: str | None) -> None:
        if op_id is not None:  # journalled: written now, with its marker, in one transaction; failures raise
            await self._write_once(op_id, record)
            return
        self._queued.append(
            (
                record.tenant,
                record.day.isoformat(),
                record.user,
                record.template,
                record.model,
                record.input_tokens,
                record.output_tokens,
                record.cached_tokens,
                record.cost_usd,
                record.runs,
            )
        )
        self._added += 1
        self._start_writer()
        if len(self._queued) >= MAX_BACKLOG:
            await self.flush()

    def _start_writer(self) -> None:
        loop = asyncio.get_running_loop()
        writer = self._writer
        if self._queued and (writer is None or writer.done() or writer.get_loop() is not loop):
            self._writer = loop.create_task(self._write_queued(), name="agent-runtime-usage-writer")

    async def flush(self) -> None:
        """Wait until every record queued so far is written (or given up on and logged); records
        queued meanwhile are not waited for, so a reader is never starved by steady traffic."""
        if self._settled >= self._added:
            return
        self._start_writer()
        done = asyncio.get_running_loop().create_future()
        self._waiters.append((self._added, done))
        await asyncio.shield(done)  # a cancelled reader must not cancel the writes of others

    async def _write_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                await self._write(batch)
            except asyncio.CancelledError:  # the loop is going away without aclose
                self.lost += len(batch)
                log.error("usage ledger: %d record(s) lost, the writer was cancelled", len(batch))
                raise
            except Exception as exc:
                self.lost += len(batch)
                log.error("usage ledger: %d record(s) lost, writes kept failing: %s", len(batch), exc)
            finally:
                self._settled += len(batch)
                self._wake()

    async def _write(self, batch: list[tuple[Any, ...]]) -> None:
        """One transaction for the batch; a busy or failing database is tried again, briefly."""
        rows = _merged(batch)
        for attempt, pause in enumerate((0.05, 0.25, 1.0, None)):
            try:
                conn = await self._connection()
                async with self._tx_lock, sqlite_transaction(conn, "usage.add"):
                    await conn.executemany(_UPSERT, rows)
                return
            except Exception as exc:
                if pause is None:
                    raise
                log.warning("usage ledger write failed (attempt %d), retrying: %s", attempt + 1, exc)
                await asyncio.sleep(pause)

    async def _write_once(self, op_id: str, r: UsageRecord) -> None:
        conn = await self._connection()
        async with self._tx_lock, sqlite_transaction(conn, "usage.add"):
            cur = await conn.execute(
                "INSERT INTO usage_applied (op_id, day) VALUES (?, ?) ON CONFLICT (op_id) DO NOTHING",
                (op_id, r.day.isoformat()),
            )
            if cur.rowcount == 1:
                row = (r.tenant, r.day.isoformat(), r.user, r.template, r.model, r.input_tokens, r.output_tokens)
                await conn.execute(_UPSERT, (*row, r.cached_tokens, r.cost_usd, r.runs))

    def _wake(self) -> None:
        waiting = []
        for target, done in self._waiters:
            if target <= self._settled or done.done():
                if not done.done():
                    with contextlib.suppress(RuntimeError):  # its loop is closed: nobody is waiting
                        done.set_result(None)
            else:
                waiting.append((target, done))
        self._waiters = waiting

    async def _scan(self, query: UsageQuery) -> list[UsageRecord]:
        await self.flush()
        conn = await self._connection()
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("tenant", query.tenant), ("user_id", query.user)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.since is not None:
            where.append("day >= ?")
            params.append(query.since.isoformat())
        if query.until is not None:
            where.append("day <= ?")
            params.append(query.until.isoformat())
        sql = "SELECT * FROM usage_ledger" + (" WHERE " + " AND ".join(where) if where else "")
        rows = await sqlite_fetch(conn, "usage.scan", sql, tuple(params))
        return [
            UsageRecord(
                tenant=row["tenant"],
                user=row["user_id"],
                template=row["template"],
                model=row["model"],
                day=date.fromisoformat(row["day"]),
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                cached_tokens=row["cached_tokens"],
                cost_usd=row["cost_usd"],
                runs=row["runs"],
            )
            for row in rows
        ]

    async def ping(self) -> None:
        await sqlite_ping(await self._connection(), "usage.ping")

    async def aclose(self) -> None:
        await self.flush()  # the records already added
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
