"""Turn the messages a run produced into an ``AgentResult`` (output, usage, cost, tool calls)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from agent_runtime.monitoring.pricing import PriceTable
from agent_runtime.types import AgentResult, ToolCallRecord, Usage

__all__ = [
    "attach_steps",
    "attempt_messages",
    "estimate_tokens",
    "finish_reason",
    "message_dict",
    "new_since_pause",
    "summarize_messages",
]


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters a token) for usage a provider never reported."""
    return max(1, len(text) // 4) if text else 0


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
    return "".join(parts)


def message_dict(message: BaseMessage) -> dict[str, Any]:
    role = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}.get(message.type, message.type)
    item: dict[str, Any] = {"role": role, "content": _text(message)}
    if isinstance(message, AIMessage) and message.tool_calls:
        item["tool_calls"] = [{"id": c.get("id"), "name": c["name"], "args": c["args"]} for c in message.tool_calls]
    if isinstance(message, ToolMessage):
        item["tool_call_id"] = message.tool_call_id
    return item


_LENGTH_REASONS = frozenset({"length", "max_tokens", "MAX_TOKENS"})
"""How providers say an answer was cut at its output bound (OpenAI, Anthropic, Gemini)."""


def finish_reason(messages: Sequence[BaseMessage]) -> str:
    """``"length"`` when the last model answer was cut at its output bound, else ``"stop"``."""
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            meta = message.response_metadata
            reason = meta.get("finish_reason") or meta.get("stop_reason")
            return "length" if reason in _LENGTH_REASONS else "stop"
    return "stop"


def summarize_messages(
    messages: Sequence[BaseMessage], model: str, prices: PriceTable
) -> tuple[str, Usage, list[ToolCallRecord]]:
    """Output text, usage with cost (each model call priced by the model that answered), tool calls."""
    usage = Usage()
    calls: dict[str, ToolCallRecord] = {}
    output = ""
    for message in messages:
        if isinstance(message, AIMessage):
            meta = message.usage_metadata
            if meta:
                cached = int((meta.get("input_token_details") or {}).get("cache_read", 0) or 0)
                reasoning = int((meta.get("output_token_details") or {}).get("reasoning", 0) or 0)
                answered_by = str(message.response_metadata.get("model_name") or model)
                usage = usage.add(
                    Usage(
                        input_tokens=meta["input_tokens"],
                        output_tokens=meta["output_tokens"],
                        total_tokens=meta["total_tokens"],
                        cached_tokens=cached,
                        reasoning_tokens=reasoning,
                        cost_usd=prices.cost(answered_by, meta["input_tokens"], meta["output_tokens"], cached),
                    )
                )
            for call in message.tool_calls:
                call_id = call.get("id") or f"call_{len(calls)}"
                calls[call_id] = ToolCallRecord(id=call_id, name=call["name"], args=call["args"])
            if not message.tool_calls:
                output = _text(message)
        elif isinstance(message, ToolMessage) and message.tool_call_id in calls:
            record = calls[message.tool_call_id]
            record.output = _text(message)[:4000]
            record.status = "error" if message.status == "error" else "ok"
    usage.cost_usd = round(usage.cost_usd, 10)
    return output, usage, list(calls.values())


def attach_steps(result: AgentResult, records: Sequence[dict[str, Any]] | None, run_id: str) -> None:
    """A workflow's cost attribution: ``metadata["steps"]`` (one record per step run: step, template,
    model, output, usage) and ``metadata["templates"]`` (usage summed per template). Only this run's
    records count: a session's checkpoint may still hold the previous run's."""
    steps = [dict(r) for r in records or () if r.get("run_id") == run_id]
    per_template: dict[str, Usage] = {}
    for record in steps:
        record.pop("run_id", None)
        usage = Usage.model_validate(record["usage"])
        per_template[record["template"]] = per_template.get(record["template"], Usage()).add(usage)
    result.metadata["steps"] = steps
    result.metadata["templates"] = {name: usage.model_dump() for name, usage in per_template.items()}


def _new_messages(messages: Sequence[BaseMessage], run_id: str) -> list[BaseMessage]:
    """The messages after this run's own input (earlier turns of the session are not this run's)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].id == run_id:
            return list(messages[index + 1 :])
    return list(messages)


def attempt_messages(latest: dict[str, Any], anchor: str) -> list[BaseMessage]:
    """The messages this attempt added: after the anchor, without those already in the state before it
    started (an earlier attempt of the same run, in a session, left its calls after the same anchor)."""
    messages = (latest.get("values") or {}).get("messages", [])
    before = latest.get("before") or ()
    return [m for m in _new_messages(messages, anchor) if m.id not in before]


def new_since_pause(streamed: list[BaseMessage], prefix: list[BaseMessage] | None) -> list[BaseMessage]:
    """Streamed messages, without the paused call a resume streams again (``prefix`` has it, uncharged)."""
    if not prefix:
        return streamed
    paused = {m.id for m in prefix}
    return [m for m in streamed if m.id not in paused]
