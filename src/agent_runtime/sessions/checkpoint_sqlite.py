"""LangGraph's ``SqliteSaver`` run inline on the event loop, with bounded history (see ``retention.py``).

Why inline: ``AsyncSqliteSaver`` sends every statement to aiosqlite's one thread per connection, and
under concurrent runs the statements of every run queue there (each hop also waits for the GIL of a
busy loop). A checkpoint statement on the loop takes a fraction of a millisecond: session runs at
c=16 went from 55 to 76 runs/s (3 interleaved rounds, spreads 51-68 and 63-78). The connection is in
autocommit mode (sqlite3's implicit ``BEGIN`` left a connection on a stale snapshot after a lock
timeout, see ``_sqlite.py``), in WAL with ``synchronous=NORMAL`` (a commit costs no ``fsync``: a
power loss may lose the last transactions, an application crash none), and waits at most
``busy_timeout_s`` for another process's write lock, blocking the loop that long at worst.

Each ``aput`` is followed by two ``DELETE`` statements in one transaction (pending writes first,
then checkpoints, so both read the same cut-off), which walk only the thread's rows of the primary
keys. The saver also implements LangGraph's ``aprune``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite import SqliteSaver

from agent_runtime._sqlite import connect_sqlite_inline
from agent_runtime.sessions.retention import DEFAULT_CHECKPOINT_HISTORY, check_prune_args

__all__ = ["BoundedSqliteSaver"]


def _cutoff(ns: str) -> str:
    """The oldest checkpoint id kept in namespace ``ns`` (NULL when the namespace holds fewer)."""
    return (
        "(SELECT c.checkpoint_id FROM checkpoints c WHERE c.thread_id = :thread AND c.checkpoint_ns = "
        f"{ns} ORDER BY c.checkpoint_id DESC LIMIT 1 OFFSET :skip)"
    )


def _prune_sql(table: str) -> str:
    own, root = _cutoff(f"{table}.checkpoint_ns"), _cutoff("''")
    return (
        f"DELETE FROM {table} WHERE thread_id = :thread AND (checkpoint_id < {own} "
        f"OR (checkpoint_ns != '' AND checkpoint_id < {root}))"
    )


_PRUNE = (_prune_sql("writes"), _prune_sql("checkpoints"))


class BoundedSqliteSaver(SqliteSaver):
    """Keeps each thread's latest checkpoint plus ``history`` earlier ones (``None``: all of them)."""

    def __init__(
        self,
        path: Path | str,
        *,
        history: int | None = DEFAULT_CHECKPOINT_HISTORY,
        serde: SerializerProtocol | None = None,
        busy_timeout_s: float = 1.0,
    ) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        super().__init__(sqlite3.connect(":memory:"), serde=serde)  # the real connection: ``setup``
        self.history = history

    def setup(self) -> None:
        if self.is_setup:
            return
        self.conn = connect_sqlite_inline(self.path, busy_timeout_s=self.busy_timeout_s)
        super().setup()

    def close(self) -> None:
        if self.is_setup:
            self.conn.close()
            self.is_setup = False

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for found in self.list(config, filter=filter, before=before, limit=limit):
            yield found

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        saved = self.put(config, checkpoint, metadata, new_versions)
        if self.history is not None:
            self._prune([str(config["configurable"]["thread_id"])], self.history + 1)
        return saved

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep_last: int = 1) -> None:
        """LangGraph's ``aprune``: ``keep_latest`` keeps the newest ``keep_last`` checkpoints of each
        namespace (see ``retention.py``), ``delete`` removes the threads."""
        check_prune_args(strategy, keep_last)
        if strategy == "delete":
            for thread_id in thread_ids:
                self.delete_thread(thread_id)
            return
        self._prune([str(t) for t in thread_ids], keep_last)

    def _prune(self, thread_ids: list[str], keep_last: int) -> None:
        with self.lock:
            self.setup()
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for thread_id in thread_ids:
                    for sql in _PRUNE:
                        self.conn.execute(sql, {"thread": thread_id, "skip": keep_last - 1})
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")  # never leave the connection inside a transaction
                raise
