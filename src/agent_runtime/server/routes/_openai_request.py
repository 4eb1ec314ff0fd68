"""An OpenAI chat request as a run: its conversation, its generation options, and what is refused.

Every parameter is either honoured or refused with a 400 in OpenAI's error shape naming it
(``param``); nothing is silently dropped.
"""

from __future__ import annotations

import json
from typing import Any

from agent_runtime.errors import BadRequestError, ConflictError
from agent_runtime.server.schemas_openai import ChatCompletionRequest, ChatMessage
from agent_runtime.types import AgentResult, ChatTurn, GenerationOptions, TurnToolCall

__all__ = [
    "UnsupportedParameterError",
    "conversation",
    "generation_options",
    "passes_user",
    "paused_error",
    "refuse_unsupported",
]


class UnsupportedParameterError(BadRequestError):
    code = "unsupported_parameter"


def _refused(param: str, message: str, code: str = "unsupported_parameter") -> BadRequestError:
    error = UnsupportedParameterError(message, details={"param": param})
    error.code = code
    return error


def _invalid(param: str, message: str) -> BadRequestError:
    return BadRequestError(message, details={"param": param})


_NOT_YET = ("tools", "tool_choice", "functions", "function_call", "prediction", "web_search_options")
"""Accepted by OpenAI, not implemented here: refused rather than ignored."""


def refuse_unsupported(body: ChatCompletionRequest) -> None:
    """400 for every parameter this server would otherwise have to ignore."""
    extra = body.model_extra or {}
    for name in _NOT_YET:
        if getattr(body, name, None) is not None or extra.get(name) is not None:
            raise _refused(name, f"{name!r} is not supported by this server yet")
    if body.n is not None and body.n > 1:
        raise _refused("n", "n > 1 is not supported: each request returns one choice")
    if body.logprobs or body.top_logprobs:
        raise _refused("logprobs" if body.logprobs else "top_logprobs", "logprobs are not supported")
    if body.audio is not None or any(m != "text" for m in body.modalities or ()):
        raise _refused("audio" if body.audio is not None else "modalities", "only text output is supported")
    if body.response_format is not None and body.response_format.get("type") != "text":
        raise _refused("response_format", "response_format other than {'type': 'text'} is not supported yet")
    if extra.get("logit_bias"):
        raise _refused("logit_bias", "logit_bias is not supported")


_ALL_OPTIONS = frozenset({"offline", "openai", "azure_openai"})
"""Providers whose chat models take every OpenAI sampling option; the others take ``max_tokens``,
``temperature``, ``top_p`` and ``stop`` (a provider SDK refuses keyword arguments it does not know)."""
_OPENAI_ONLY = ("seed", "presence_penalty", "frequency_penalty")


def passes_user(provider: str | None) -> bool:
    """Whether the model of ``provider`` takes OpenAI's ``user`` (for the others it is only recorded)."""
    return provider in _ALL_OPTIONS


def paused_error(result: AgentResult) -> ConflictError:
    """The OpenAI API has no approval step: a run paused for one is an error that says how to answer it."""
    resume_id = result.metadata.get("resume_id") or result.session_id or result.run_id
    return ConflictError(
        f"run {result.run_id} paused for approval of its tool calls; answer it with "
        f"POST /v1/runs/{resume_id}/resume (approve, edit or reject)",
        details={"run_id": result.run_id, "resume_id": resume_id},
    )


def generation_options(body: ChatCompletionRequest, provider: str | None) -> GenerationOptions | None:
    """The options for the model call; one the template's model cannot take is a 400 naming it. ``user``
    is recorded with the run in any case, and passed to the models that take it."""
    every = provider in _ALL_OPTIONS
    if not every:
        for name in _OPENAI_ONLY:
            if getattr(body, name) is not None:
                raise _refused(name, f"{name!r} is not supported by this template's model (provider {provider})")
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    options = GenerationOptions(
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=tuple(stop) if stop else None,
        seed=body.seed,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        user=body.user if every else None,
    )
    return options if options.model_settings() else None


def _text(message: ChatMessage, index: int) -> str:
    """A message's text; image, audio and file parts are refused (no template declares a vision model)."""
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    texts = []
    for part in message.content:
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind in ("image_url", "input_image"):
            raise _refused(f"messages[{index}].content", "image parts need a model with vision", "image_not_supported")
        else:
            raise _refused(
                f"messages[{index}].content", f"content parts of type {kind!r} are not supported", "unsupported_content"
            )
    return "".join(texts)


def _tool_calls(message: ChatMessage, index: int) -> tuple[TurnToolCall, ...]:
    calls = []
    for call in message.tool_calls or ():
        function = call.get("function") or {}
        try:
            args = json.loads(function.get("arguments") or "{}")
            calls.append(TurnToolCall(id=str(call["id"]), name=str(function["name"]), args=args))
        except (KeyError, TypeError, ValueError) as exc:
            raise _invalid(
                f"messages[{index}].tool_calls", f"a tool call needs an id, a name and JSON object arguments: {exc}"
            ) from None
    return tuple(calls)


def _turn(message: ChatMessage, index: int, allow_system: bool) -> ChatTurn:
    role: Any = "system" if message.role == "developer" else message.role
    if role == "function":
        raise _invalid(f"messages[{index}].role", "the 'function' role is deprecated: send 'tool' messages")
    if role == "system" and not allow_system:
        raise _refused(
            f"messages[{index}].role", "this template does not accept client system messages", "system_not_allowed"
        )
    if role == "tool" and not message.tool_call_id:
        raise _invalid(f"messages[{index}].tool_call_id", "a tool message needs the tool_call_id it answers")
    return ChatTurn(
        role=role,
        content=_text(message, index),
        tool_calls=_tool_calls(message, index) if role == "assistant" else (),
        tool_call_id=message.tool_call_id if role == "tool" else None,
        name=message.name,
    )


def _check_tool_pairs(turns: list[ChatTurn]) -> None:
    """Each assistant tool call is answered by tool messages right after it, and each tool message answers one."""
    pending: set[str] = set()
    for index, turn in enumerate(turns):
        if turn.role == "tool":
            if turn.tool_call_id not in pending:
                raise _invalid(f"messages[{index}].tool_call_id", "this tool message answers no pending tool call")
            pending.discard(turn.tool_call_id)
            continue
        if pending:
            raise _invalid(f"messages[{index}]", f"tool calls {sorted(pending)} have no tool message answering them")
        pending = {call.id for call in turn.tool_calls}


def conversation(body: ChatCompletionRequest, *, allow_system: bool) -> tuple[list[ChatTurn], str]:
    """The earlier turns, oldest first, and the input: the final message, which must be a user's."""
    last = len(body.messages) - 1
    if body.messages[last].role != "user":
        raise _invalid("messages", "the last message must be a user message (client-side tools are not supported yet)")
    turns = [_turn(message, i, allow_system) for i, message in enumerate(body.messages)]
    _check_tool_pairs(turns)
    text = turns[last].content
    if not text.strip():
        raise _invalid(f"messages[{last}].content", "the last user message must hold text")
    return turns[:last], text
