"""History length policy: keep the newest turns of a conversation, drop older ones from the state.

Policy (documented for the executor and users): before each model call, when a session's
thread holds more than ``max_messages`` messages, the oldest are removed from the LangGraph
state, so the checkpoint stops growing as well as the prompt. The cut always falls on a user
message, so an assistant tool call is never separated from its tool results; when the newest
turn alone is longer than the limit, that whole turn is kept. Templates that would rather
summarize than forget can list LangChain's ``SummarizationMiddleware`` instead.
"""

from __future__ import annotations

from typing import Any

from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import AnyMessage, HumanMessage, RemoveMessage
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from agent_runtime.errors import ValidationError

__all__ = ["HistoryLimitMiddleware", "trim_history"]


def trim_history(messages: list[AnyMessage], max_messages: int) -> list[AnyMessage] | None:
    """The messages to keep, or ``None`` when nothing needs to go."""
    if len(messages) <= max_messages:
        return None
    humans = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    cut = len(messages) - max_messages
    inside = [i for i in humans if i >= cut]
    # no user message inside the window: keep the newest turn whole
    start = inside[0] if inside else (humans[-1] if humans else cut)
    return messages[start:] if start > 0 else None


class HistoryLimitMiddleware(AgentMiddleware):
    """LangChain agent middleware enforcing ``max_messages`` per session thread (see module docstring)."""

    def __init__(self, max_messages: int = 200) -> None:
        super().__init__()
        if max_messages < 1:
            raise ValidationError("max_messages must be at least 1")
        self.max_messages = max_messages

    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        messages = list(state["messages"])
        kept = trim_history(messages, self.max_messages)
        if kept is None:
            return None
        dropped = messages[: len(messages) - len(kept)]
        if all(m.id for m in dropped):  # remove only what goes, instead of rewriting the whole history
            return {"messages": [RemoveMessage(id=str(m.id)) for m in dropped]}
        return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *kept]}

    async def abefore_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        return self.before_model(state, runtime)
