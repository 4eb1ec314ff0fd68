"""Bounded checkpoint history: which LangGraph checkpoints of a thread a saver keeps.

LangGraph writes a checkpoint per step and each holds the whole state, so an unpruned thread costs
the square of its conversation. Every session saver keeps the latest checkpoint of each thread
plus ``history`` earlier ones (the Agent Protocol's thread history and forks reach that far back),
and prunes as it writes. The same rule backs LangGraph's own ``aprune(thread_ids,
strategy="keep_latest")``, extended with ``keep_last`` (as langgraph-checkpoint-redis does):

* in every namespace, the newest ``keep_last`` checkpoints stay;
* in a subgraph namespace, a checkpoint older than the oldest kept root checkpoint goes too (each
  run of a workflow step opens a namespace of its own, so old namespaces would pile up otherwise).

A paused run's checkpoints are never pruned: its root checkpoint is the thread's latest, and the
subgraph checkpoints it resumes from were written after it. Pending writes go with their
checkpoint, and channel values no kept checkpoint references go with the last one that did.
The rule assumes full-state channels (LangChain's agents and ``MessagesState``), not LangGraph's
beta ``DeltaChannel``, whose values are rebuilt from the writes of older checkpoints.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from agent_runtime.errors import ValidationError

__all__ = ["DEFAULT_CHECKPOINT_HISTORY", "check_prune_args", "doomed_checkpoints"]

DEFAULT_CHECKPOINT_HISTORY = 20
"""Earlier checkpoints kept per thread besides the latest (``Settings.sessions.checkpoint_history``)."""


def check_prune_args(strategy: str, keep_last: int) -> None:
    """``aprune``'s arguments: ``strategy`` is LangGraph's ``keep_latest`` or ``delete``."""
    if strategy not in ("keep_latest", "delete"):
        raise ValidationError(f"prune strategy must be 'keep_latest' or 'delete', not {strategy!r}")
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise ValidationError("keep_last must be a positive integer")


def doomed_checkpoints(ids_by_ns: Mapping[str, Collection[str]], keep_last: int) -> dict[str, list[str]]:
    """Per namespace, the checkpoint ids the rule above removes (ids are time ordered)."""
    root = sorted(ids_by_ns.get("", ()))
    root_cutoff = root[-keep_last] if len(root) >= keep_last else None
    doomed: dict[str, list[str]] = {}
    for ns, ids in ids_by_ns.items():
        ordered = sorted(ids)
        cut = len(ordered) - keep_last
        gone = [cid for i, cid in enumerate(ordered) if i < cut or (ns and root_cutoff and cid < root_cutoff)]
        if gone:
            doomed[ns] = gone
    return doomed
