"""LangGraph's ``AsyncPostgresSaver`` (pooled) with bounded history (see ``retention.py``) and our errors.

After each ``aput`` one transaction prunes the thread: pending writes and checkpoints older than the
namespace's ``history + 1`` newest (and subgraph checkpoints older than the oldest kept root one),
then the channel values no kept checkpoint references. Checkpoint ids are ordered byte-wise
(``COLLATE "C"``), as LangGraph's uuid6 ids are meant to be. Every call goes through the server's
circuit breaker and turns psycopg failures into ``BackendError``. ``setup()`` runs LangGraph's own
migrations under an advisory lock, so workers starting together do not race on them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from agent_runtime._pg_schema import LOCK_KEY
from agent_runtime._postgres import PgClient, pg_errors
from agent_runtime.sessions.retention import DEFAULT_CHECKPOINT_HISTORY, check_prune_args

__all__ = ["BoundedPostgresSaver"]

_SETUP_LOCK = LOCK_KEY + 1


def _cutoff(ns: str) -> str:
    return (
        "(SELECT c.checkpoint_id FROM checkpoints c WHERE c.thread_id = %(thread)s AND c.checkpoint_ns = "
        f'{ns} ORDER BY c.checkpoint_id COLLATE "C" DESC LIMIT 1 OFFSET %(skip)s)'
    )


def _prune_sql(table: str) -> str:
    own, root = _cutoff(f"{table}.checkpoint_ns"), _cutoff("''")
    return (
        f'DELETE FROM {table} WHERE thread_id = %(thread)s AND (checkpoint_id COLLATE "C" < {own} '
        f"OR (checkpoint_ns != '' AND checkpoint_id COLLATE \"C\" < {root}))"
    )


_PRUNE = (
    _prune_sql("checkpoint_writes"),
    _prune_sql("checkpoints"),
    "DELETE FROM checkpoint_blobs b WHERE b.thread_id = %(thread)s AND NOT EXISTS (SELECT 1 FROM checkpoints c"
    " WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns"
    " AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)",
)


class BoundedPostgresSaver(AsyncPostgresSaver):
    """Keeps each thread's latest checkpoint plus ``history`` earlier ones (``None``: all of them)."""

    def __init__(self, client: PgClient, *, history: int | None = DEFAULT_CHECKPOINT_HISTORY) -> None:
        super().__init__(client.raw_pool)
        self.client = client
        self.history = history
        self.is_setup = False

    @contextlib.asynccontextmanager
    async def _guard(self, operation: str) -> AsyncIterator[None]:
        async with pg_errors(operation, self.client.admit()):
            if not self.is_setup:
                await self._setup_locked()
            yield

    async def _setup_locked(self) -> None:
        await self.client.pool()
        async with self.client.connection("checkpoints.setup") as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK,))
            try:
                await super().setup()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
        self.is_setup = True

    async def setup(self) -> None:
        async with self._guard("checkpoints.setup"):
            pass

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        async with self._guard("checkpoints.get"):
            return await super().aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        async with self._guard("checkpoints.list"):
            items = [t async for t in super().alist(config, filter=filter, before=before, limit=limit)]
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        async with self._guard("checkpoints.put"):
            saved = await super().aput(config, checkpoint, metadata, new_versions)
            if self.history is not None:
                await self._prune([str(config["configurable"]["thread_id"])], self.history + 1)
        return saved

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        async with self._guard("checkpoints.put_writes"):
            await super().aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        async with self._guard("checkpoints.delete_thread"):
            await super().adelete_thread(thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep_last: int = 1) -> None:
        """LangGraph's ``aprune``: ``keep_latest`` keeps the newest ``keep_last`` checkpoints of each
        namespace (see ``retention.py``), ``delete`` removes the threads."""
        check_prune_args(strategy, keep_last)
        if strategy == "delete":
            for thread_id in thread_ids:
                await self.adelete_thread(thread_id)
            return
        async with self._guard("checkpoints.prune"):
            await self._prune([str(t) for t in thread_ids], keep_last)

    async def _prune(self, thread_ids: list[str], keep_last: int) -> None:
        async with self._cursor() as cur, cur.connection.transaction():
            for thread_id in thread_ids:
                for sql in _PRUNE:
                    await cur.execute(sql, {"thread": thread_id, "skip": keep_last - 1})
