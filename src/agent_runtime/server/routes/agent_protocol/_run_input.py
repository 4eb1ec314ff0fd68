"""A run's ``input`` as the runtime takes it: ``{"messages": [...]}`` in LangChain's message shapes
(dicts with ``type`` or ``role``; a string is a user message) becomes the earlier turns
(``AgentContext.history``) and the new user text, the last message. On a thread that already holds a
conversation only the turns after its last assistant one are added (the stored one is authoritative)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError as PydanticValidationError

from agent_runtime.errors import ValidationError
from agent_runtime.types import ChatTurn, TurnToolCall

__all__ = ["MAX_MESSAGES", "RunInput", "parse_input", "turn_out"]

MAX_MESSAGES: Final = 1000
_ROLES: Final[dict[str, str]] = {"user": "user", "human": "user", "ai": "assistant", "assistant": "assistant"}
_ROLES_OUT: Final[dict[str, str]] = {"user": "human", "assistant": "ai", "tool": "tool", "system": "system"}


@dataclass(frozen=True)
class RunInput:
    history: tuple[ChatTurn, ...]
    text: str


def parse_input(value: Mapping[str, Any] | None) -> RunInput:
    """The turns of ``value``; ``ValidationError`` (naming the part) for anything else."""
    if not value:
        raise ValidationError("input is required (a user message), or a command to resume", details={"param": "input"})
    extra = sorted(set(value) - {"messages"})
    if extra:
        raise ValidationError(
            f"input keys not supported by agent-runtime: {', '.join(extra)} (give input.messages)",
            details={"param": f"input.{extra[0]}"},
        )
    messages = value.get("messages")
    if isinstance(messages, str | dict):
        messages = [messages]
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise ValidationError(
            f"input.messages must be a list of 1 to {MAX_MESSAGES} messages", details={"param": "input.messages"}
        )
    turns = [_turn(message, f"input.messages[{i}]") for i, message in enumerate(messages)]
    if turns[-1].role != "user":
        raise ValidationError(
            "the last of input.messages must be a user message (the run answers it)",
            details={"param": "input.messages"},
        )
    return RunInput(tuple(turns[:-1]), turns[-1].content)


def _turn(message: Any, where: str) -> ChatTurn:
    if isinstance(message, str):
        return ChatTurn(role="user", content=message)
    if not isinstance(message, dict):
        raise ValidationError(f"{where} must be a string or a message object", details={"param": "input.messages"})
    kind = message.get("role", message.get("type", "user"))
    role = "tool" if kind == "tool" else _ROLES.get(str(kind))
    if role is None:
        raise ValidationError(
            f"{where}: {kind!r} messages are not supported (user / human, ai / assistant, tool; the template's "
            "prompt is the system message)",
            details={"param": "input.messages"},
        )
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise ValidationError(f"{where}: a tool message needs its tool_call_id", details={"param": "input.messages"})
    try:
        return ChatTurn(
            role=role,
            content=_text(message.get("content", ""), where),
            tool_calls=tuple(_calls(message.get("tool_calls") or (), where)) if role == "assistant" else (),
            tool_call_id=message.get("tool_call_id") if role == "tool" else None,
            name=message.get("name") if isinstance(message.get("name"), str) else None,
        )
    except PydanticValidationError as exc:
        raise ValidationError(f"{where}: {exc.errors()[0]['msg']}", details={"param": "input.messages"}) from None


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in content):
        return "".join(str(b.get("text", "")) for b in content)
    raise ValidationError(
        f"{where}.content must be text (a string or text blocks)", details={"param": "input.messages"}
    )


def _calls(calls: Any, where: str) -> list[TurnToolCall]:
    if not isinstance(calls, Sequence) or isinstance(calls, str):
        raise ValidationError(f"{where}.tool_calls must be a list", details={"param": "input.messages"})
    return [TurnToolCall.model_validate(call) for call in calls]


def turn_out(turn: ChatTurn) -> dict[str, Any]:
    """A turn as a LangChain message dict (how a run's ``kwargs.input`` shows it)."""
    out: dict[str, Any] = {"type": _ROLES_OUT[turn.role], "content": turn.content}
    if turn.tool_calls:
        out["tool_calls"] = [call.model_dump() for call in turn.tool_calls]
    if turn.tool_call_id is not None:
        out["tool_call_id"] = turn.tool_call_id
    return out
