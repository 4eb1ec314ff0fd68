"""A client's earlier turns (``AgentContext.history``) as LangChain messages, and how they meet a session.

Rule: a run without a session, or in a session that holds no messages yet, sees the whole history
the client sent, in order, before its input (after the template's own system prompt). In a session
that already holds messages the stored conversation is authoritative: only the turns the client sent
after its last assistant turn (the turns newer than anything the server answered) are appended.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage

from agent_runtime.types import ChatTurn

__all__ = ["history_chars", "history_ids", "history_messages", "newer_turns"]


def history_ids(run_id: str, count: int) -> list[str]:
    """The message ids of a run's history turns: unique per run, so a retry replaces rather than repeats."""
    return [f"{run_id}-h{index}" for index in range(count)]


def _message(turn: ChatTurn, message_id: str) -> BaseMessage:
    if turn.role == "system":
        return SystemMessage(content=turn.content, id=message_id)
    if turn.role == "user":
        return HumanMessage(content=turn.content, id=message_id, name=turn.name)
    if turn.role == "tool":
        return ToolMessage(content=turn.content, tool_call_id=turn.tool_call_id or "", id=message_id, name=turn.name)
    calls = [ToolCall(name=c.name, args=dict(c.args), id=c.id, type="tool_call") for c in turn.tool_calls]
    return AIMessage(content=turn.content, tool_calls=calls, id=message_id, name=turn.name)


def history_messages(turns: Sequence[ChatTurn], run_id: str) -> list[BaseMessage]:
    return [_message(turn, i) for turn, i in zip(turns, history_ids(run_id, len(turns)), strict=True)]


def newer_turns(turns: Sequence[ChatTurn]) -> list[ChatTurn]:
    """The turns after the last assistant turn: what a session's stored conversation does not hold yet."""
    last = max((i for i, turn in enumerate(turns) if turn.role == "assistant"), default=-1)
    return list(turns[last + 1 :])


def history_chars(turns: Sequence[ChatTurn]) -> int:
    return sum(len(t.content) + sum(len(c.name) + len(str(c.args)) for c in t.tool_calls) for t in turns)
