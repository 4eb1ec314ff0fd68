"""The history length policy: oldest turns go, a tool call never loses its results."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph.message import add_messages

from agent_runtime.errors import ValidationError
from agent_runtime.sessions.history import HistoryLimitMiddleware, trim_history


def turn(i: int, tool: bool = False) -> list:
    msgs: list = [HumanMessage(f"q{i}", id=f"h{i}")]
    if tool:
        msgs += [
            AIMessage("", id=f"c{i}", tool_calls=[{"id": f"t{i}", "name": "calc", "args": {}}]),
            ToolMessage("42", tool_call_id=f"t{i}", id=f"r{i}"),
        ]
    return [*msgs, AIMessage(f"a{i}", id=f"a{i}")]


def test_short_history_is_untouched() -> None:
    assert trim_history(turn(1) + turn(2), 4) is None
    assert HistoryLimitMiddleware(10).before_model({"messages": turn(1)}, None) is None


def test_cut_falls_on_a_user_message() -> None:
    history = turn(1) + turn(2, tool=True) + turn(3)
    kept = trim_history(history, 5)
    assert kept is not None and [m.id for m in kept] == ["h3", "a3"]
    kept = trim_history(history, 6)
    assert kept is not None and [m.id for m in kept] == ["h2", "c2", "r2", "a2", "h3", "a3"]


def test_a_long_last_turn_is_kept_whole() -> None:
    history = turn(1) + turn(2, tool=True)
    kept = trim_history(history, 2)
    assert kept is not None and [m.id for m in kept] == ["h2", "c2", "r2", "a2"]


def test_middleware_update_replaces_the_state() -> None:
    history = turn(1) + turn(2) + turn(3)
    update = HistoryLimitMiddleware(4).before_model({"messages": history}, None)
    assert update is not None
    assert [m.id for m in add_messages(history, update["messages"])] == ["h2", "a2", "h3", "a3"]


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        HistoryLimitMiddleware(0)
