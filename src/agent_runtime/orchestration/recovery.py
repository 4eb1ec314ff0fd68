"""Resuming a background run from its last LangGraph checkpoint after its worker died.

A durable run (``DURABLE_KEY`` in its metadata: every background run) always runs on a thread with a
checkpointer: its session's, or a temporary implicit session named after the run when it has none
(deleted when the run ends). Each finished graph step is checkpointed, so when a later claim of the
run (``RECOVER_KEY``) finds the run's own input message (id = run id) on the thread, it continues the
graph from there (input ``None``) instead of starting the turn again: steps that completed are not
executed again, the step in flight is. Tools are therefore at-least-once; a tool that must not act
twice reads ``run_id`` and ``run_attempt`` from its ``RunnableConfig["configurable"]`` and makes its
effect idempotent on them.

Accounting: the resuming attempt is charged only for the model calls it makes; the calls the dead
attempt finished (in the checkpoint before this attempt started) are reported as ``SALVAGED_KEY`` on
the result, so that the worker charges them once, as the dead attempt's usage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from langchain_core.messages import BaseMessage

__all__ = ["DURABLE_KEY", "RECOVER_KEY", "SALVAGED_KEY", "CheckpointTurn", "checkpoint_turn"]

DURABLE_KEY: Final = "durable"
"""``AgentContext.metadata``: run on a checkpointed thread even without a session (background runs)."""
RECOVER_KEY: Final = "resume_checkpoint"
"""``AgentContext.metadata``: an earlier attempt of this run ran; continue from its checkpoint."""
SALVAGED_KEY: Final = "salvaged_usage"
"""``AgentResult.metadata``: ``Usage`` of the steps an earlier attempt finished (charged by the worker)."""


@dataclass(frozen=True)
class CheckpointTurn:
    """What an earlier attempt of a run left on its thread."""

    before: frozenset[str | None]
    """Ids of every message on the thread as this attempt starts (not this attempt's to charge)."""
    done: list[BaseMessage]
    """The run's messages after its input, finished by earlier attempts."""
    values: dict[str, Any]
    finished: bool
    """The graph had nothing left to run (the attempt died after its last step, before recording it)."""


async def checkpoint_turn(agent: Any, config: dict[str, Any], run_id: str) -> CheckpointTurn | None:
    """The run's turn on the checkpointed thread, or ``None`` when no earlier attempt got that far."""
    state = await agent.aget_state(config)
    values = dict(state.values or {}) if isinstance(state.values, dict) else {}
    messages = list(values.get("messages") or ())
    ids = [getattr(m, "id", None) for m in messages]
    if run_id not in ids:
        return None
    done = messages[ids.index(run_id) + 1 :]
    return CheckpointTurn(frozenset(ids), done, values, finished=not state.next)
