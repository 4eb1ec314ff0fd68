"""LangGraph's ``AsyncSqliteSaver`` with bounded history (see ``retention.py``).

Each ``aput`` is followed by two ``DELETE`` statements in one transaction (pending writes first,
then checkpoints, so both read the same cut-off), which walk only the thread's rows of the primary
keys. The saver also implements LangGraph's ``aprune``, and runs its connection with
``synchronous=NORMAL`` like the runtime's other SQLite files: in WAL mode a commit then costs no
``fsync`` (a power loss may lose the last transactions, an application crash none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

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


class BoundedSqliteSaver(AsyncSqliteSaver):
    """Keeps each thread's latest checkpoint plus ``history`` earlier ones (``None``: all of them)."""

    def __init__(
        self, conn: Any, *, history: int | None = DEFAULT_CHECKPOINT_HISTORY, serde: SerializerProtocol | None = None
    ) -> None:
        super().__init__(conn, serde=serde)
        self.history = history

    async def setup(self) -> None:
        if self.is_setup:
            return
        await super().setup()
        async with self.lock:
            await self.conn.execute("PRAGMA synchronous=NORMAL")

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        saved = await super().aput(config, checkpoint, metadata, new_versions)
        if self.history is not None:
            await self._prune([str(config["configurable"]["thread_id"])], self.history + 1)
        return saved

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep_last: int = 1) -> None:
        """LangGraph's ``aprune``: ``keep_latest`` keeps the newest ``keep_last`` checkpoints of each
        namespace (see ``retention.py``), ``delete`` removes the threads."""
        check_prune_args(strategy, keep_last)
        if strategy == "delete":
            for thread_id in thread_ids:
                await self.adelete_thread(thread_id)
            return
        await self.setup()
        await self._prune([str(t) for t in thread_ids], keep_last)

    async def _prune(self, thread_ids: list[str], keep_last: int) -> None:
        async with self.lock:
            try:
                for thread_id in thread_ids:
                    for sql in _PRUNE:
                        await self.conn.execute(sql, {"thread": thread_id, "skip": keep_last - 1})
                await self.conn.commit()
            except BaseException:
                await self.conn.rollback()  # never leave the shared connection inside a transaction
                raise
