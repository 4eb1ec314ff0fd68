"""Reading a thread's state without its graph, and checking updates against a graph's state keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.checkpoint.base import CheckpointTuple
from langgraph.types import Interrupt, StateSnapshot

from agent_runtime.errors import ValidationError

__all__ = ["EMPTY_STATE", "check_state_keys", "raw_snapshot", "waiting"]

EMPTY_STATE = StateSnapshot({}, (), {}, {}, None, None, (), ())


def raw_snapshot(found: CheckpointTuple) -> StateSnapshot:
    """A state read without its graph: channel values, and interrupts from the pending writes."""
    values = {k: v for k, v in found.checkpoint["channel_values"].items() if not k.startswith("__") and ":" not in k}
    interrupts = tuple(
        v
        for _, channel, value in found.pending_writes or ()
        if channel == "__interrupt__"
        for v in (value if isinstance(value, list | tuple) else [value])
        if isinstance(v, Interrupt)
    )
    created = found.checkpoint.get("ts")
    return StateSnapshot(values, (), found.config, found.metadata, created, found.parent_config, (), interrupts)


def check_state_keys(graph: Any, values: Any) -> None:
    """Refuse values for keys the graph's state does not have (LangGraph would drop them silently)."""
    if not isinstance(values, Mapping):
        return
    known = {name for name in graph.channels if not name.startswith("__") and ":" not in name}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValidationError(
            f"values has keys the graph's state does not have: {unknown}; its state keys: {sorted(known)}",
            details={"param": "values"},
        )


def waiting(state: StateSnapshot) -> bool:
    """Whether a task of the state waits on an interrupt (a pause LangGraph has not surfaced yet)."""
    return any(task.interrupts for task in state.tasks)
