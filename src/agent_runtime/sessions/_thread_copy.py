"""Copy one LangGraph thread's checkpoints into another, through any ``BaseCheckpointSaver``.

The savers of this package (memory, SQLite, Redis) do not implement LangGraph's optional
``acopy_thread`` (nor ``adelete_for_runs``); replaying ``aput`` / ``aput_writes`` oldest first keeps
every checkpoint id, parent link and pending write, so time travel and forks work on the copy exactly
as on the original.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import Any

__all__ = ["copy_checkpoints", "put_checkpoints"]


async def copy_checkpoints(saver: Any, source: str, target: str) -> int:
    """Copy every checkpoint (all namespaces) of thread ``source`` into ``target``; returns how many."""
    found = [t async for t in saver.alist({"configurable": {"thread_id": source}})]
    await put_checkpoints(saver, found, target)
    return len(found)


async def put_checkpoints(saver: Any, found: Sequence[Any], target: str, *, dropped: Collection[str] = ()) -> None:
    """Store checkpoint tuples (newest first, as ``alist`` lists them) in thread ``target``; a link to a
    parent among ``dropped`` (checkpoint ids left out on purpose) is left out too."""
    for item in reversed(found):  # oldest first: each parent exists before its children
        configurable = item.config["configurable"]
        parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        config: dict[str, Any] = {
            "configurable": {"thread_id": target, "checkpoint_ns": configurable.get("checkpoint_ns", "")}
        }
        if parent is not None and parent not in dropped:
            config["configurable"]["checkpoint_id"] = parent
        checkpoint = item.checkpoint
        stored = await saver.aput(config, checkpoint, item.metadata, dict(checkpoint["channel_versions"]))
        writes: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for task_id, channel, value in item.pending_writes or ():
            writes[task_id].append((channel, value))
        for task_id, task_writes in writes.items():
            await saver.aput_writes(stored, task_writes, task_id)
