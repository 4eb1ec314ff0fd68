"""Core objects in the Agent Protocol's JSON shapes (LangGraph's ``Assistant``, ``Thread``,
``ThreadState``, ``Checkpoint``), as ``langgraph-sdk`` types them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.types import StateSnapshot

from agent_runtime._jsonable import jsonable
from agent_runtime.agents.assistants import SYSTEM_CREATED_AT, Assistant
from agent_runtime.sessions.models import RUN_ERROR_KEY, Session
from agent_runtime.sessions.threads import ThreadView

__all__ = ["assistant_out", "checkpoint_out", "jsonable", "state_out", "thread_out"]


def assistant_out(assistant: Assistant) -> dict[str, Any]:
    return {
        "assistant_id": assistant.assistant_id,
        "graph_id": assistant.graph_id,
        "config": {},
        "context": {},
        "created_at": SYSTEM_CREATED_AT.isoformat(),
        "updated_at": SYSTEM_CREATED_AT.isoformat(),
        "metadata": jsonable(assistant.metadata),
        "version": 1,
        "name": assistant.graph_id,
        "description": assistant.template.description or None,
    }


def checkpoint_out(session: Session, config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A checkpoint reference with the thread's public id (inside, checkpoints are keyed by ``Session.key``)."""
    if not config:
        return None
    configurable = config.get("configurable", {})
    return {
        "thread_id": session.id,
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
        "checkpoint_map": configurable.get("checkpoint_map"),
    }


def _metadata(session: Session, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    out = jsonable(dict(metadata or {}))
    if "thread_id" in out:
        out["thread_id"] = session.id
    return dict(out)


def state_out(session: Session, state: StateSnapshot) -> dict[str, Any]:
    """A ``ThreadState``: values, next nodes, tasks, checkpoint, parent, interrupts."""
    empty = {"thread_id": session.id, "checkpoint_ns": "", "checkpoint_id": None, "checkpoint_map": None}
    return {
        "values": jsonable(state.values),
        "next": list(state.next),
        "tasks": [_task_out(session, task) for task in state.tasks],
        "checkpoint": checkpoint_out(session, state.config) or empty,
        "metadata": _metadata(session, state.metadata),
        "created_at": state.created_at,
        "parent_checkpoint": checkpoint_out(session, state.parent_config),
        "interrupts": [jsonable(i) for i in state.interrupts],
    }


def _task_out(session: Session, task: Any) -> dict[str, Any]:
    sub = task.state
    return {
        "id": task.id,
        "name": task.name,
        "error": None if task.error is None else repr(task.error),
        "interrupts": [jsonable(i) for i in task.interrupts],
        "checkpoint": checkpoint_out(session, sub) if isinstance(sub, Mapping) else None,
        "state": state_out(session, sub) if isinstance(sub, StateSnapshot) else None,
        "result": jsonable(task.result),
    }


def thread_out(view: ThreadView) -> dict[str, Any]:
    """A ``Thread``: its record, status, latest values and pending interrupts by task."""
    session, state = view.session, view.state
    interrupts = {t.id: [jsonable(i) for i in t.interrupts] for t in state.tasks if t.interrupts} if state else {}
    return {
        "thread_id": session.id,
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
        "metadata": jsonable(view.metadata),
        "status": view.status,
        "config": {},
        "values": jsonable(state.values) if state is not None else {},
        "interrupts": interrupts,
        "error": session.metadata.get(RUN_ERROR_KEY),
    }
