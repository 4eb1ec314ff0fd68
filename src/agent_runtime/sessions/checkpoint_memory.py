"""LangGraph's ``InMemorySaver`` with bounded history (see ``retention.py``).

``InMemorySaver`` keeps every checkpoint, every pending write and every version of every channel
until its thread is deleted, and finds a thread's latest checkpoint with ``max`` over all of them:
memory and the cost of a turn grow with the thread. This saver prunes on each ``put`` and also
implements LangGraph's ``prune`` / ``aprune``. It remembers the channel versions each stored
checkpoint references, so dropping the channel values no kept checkpoint needs takes no decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.base import SerializerProtocol

from agent_runtime.sessions.retention import DEFAULT_CHECKPOINT_HISTORY, check_prune_args, doomed_checkpoints

__all__ = ["BoundedInMemorySaver"]


class BoundedInMemorySaver(InMemorySaver):
    """Keeps each thread's latest checkpoint plus ``history`` earlier ones (``None``: all of them)."""

    def __init__(self, *, history: int | None = DEFAULT_CHECKPOINT_HISTORY, serde: SerializerProtocol | None = None):
        super().__init__(serde=serde)
        self.history = history
        # thread -> (ns, checkpoint id) -> the channel versions that checkpoint references
        self._refs: dict[str, dict[tuple[str, str], ChannelVersions]] = {}

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        saved = super().put(config, checkpoint, metadata, new_versions)
        thread_id = str(config["configurable"]["thread_id"])
        ns = str(config["configurable"]["checkpoint_ns"])
        self._refs.setdefault(thread_id, {})[(ns, checkpoint["id"])] = dict(checkpoint["channel_versions"])
        if self.history is not None:
            self._prune(thread_id, self.history + 1)
        return saved

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep_last: int = 1) -> None:
        """LangGraph's ``prune``: ``keep_latest`` keeps the newest ``keep_last`` checkpoints of each
        namespace (see ``retention.py``), ``delete`` removes the threads."""
        check_prune_args(strategy, keep_last)
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
            else:
                self._prune(str(thread_id), keep_last)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep_last: int = 1) -> None:
        self.prune(thread_ids, strategy=strategy, keep_last=keep_last)

    def delete_thread(self, thread_id: str) -> None:
        super().delete_thread(thread_id)
        self._refs.pop(str(thread_id), None)

    def _prune(self, thread_id: str, keep_last: int) -> None:
        namespaces = self.storage.get(thread_id)
        if not namespaces:
            return
        doomed = doomed_checkpoints(namespaces, keep_last)
        if not doomed:
            return
        refs = self._refs.setdefault(thread_id, {})
        dropped: set[tuple[str, str, Any]] = set()
        for ns, ids in doomed.items():
            stored = namespaces[ns]
            for cid in ids:
                saved = stored.pop(cid)
                self.writes.pop((thread_id, ns, cid), None)
                versions = refs.pop((ns, cid), None) or self._versions_of(saved)
                dropped.update((ns, channel, version) for channel, version in versions.items())
            if not stored:
                del namespaces[ns]
        for ns, stored in namespaces.items():
            for cid, saved in stored.items():
                versions = refs.get((ns, cid)) or self._versions_of(saved)
                dropped.difference_update((ns, channel, version) for channel, version in versions.items())
        for ns, channel, version in dropped:
            self.blobs.pop((thread_id, ns, channel, version), None)

    def _versions_of(self, saved: Any) -> ChannelVersions:
        """The channel versions of a checkpoint stored before this saver tracked them."""
        versions: ChannelVersions = self.serde.loads_typed(saved[0]).get("channel_versions", {})
        return versions
