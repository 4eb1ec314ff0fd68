"""A Responses API request as a run: its input items as turns, its options, and what is refused.

Every parameter and item is honoured or refused with a 400 in OpenAI's error shape naming it
(``param``). Function tools and their call items are not implemented yet: refused, never dropped.
"""

from __future__ import annotations

from typing import Any

from agent_runtime.errors import BadRequestError
from agent_runtime.server.routes._openai_request import UnsupportedParameterError, passes_user
from agent_runtime.server.schemas_responses import ResponseCreateRequest
from agent_runtime.types import ChatTurn, GenerationOptions

__all__ = [
    "check_continued",
    "generation_options",
    "input_turns",
    "instructions_turn",
    "refuse_unsupported",
    "refused",
]

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_PART_TYPES = {"user": "input_text", "system": "input_text", "assistant": "output_text"}


def refused(param: str, message: str) -> BadRequestError:
    """A 400 ``unsupported_parameter`` naming ``param``."""
    return UnsupportedParameterError(message, details={"param": param})


def _invalid(param: str, message: str) -> BadRequestError:
    return BadRequestError(message, details={"param": param})


def refuse_unsupported(body: ResponseCreateRequest) -> None:
    """400 for every parameter this server would otherwise have to ignore."""
    for name, value in (body.model_extra or {}).items():
        if value is not None and value is not False:
            raise refused(name, f"{name!r} is not supported by this server")
    if body.tools:
        raise refused("tools", "function tools are not supported by /v1/responses yet (send no tools)")
    if body.tool_choice not in (None, "auto", "none"):
        raise refused("tool_choice", "tool_choice other than 'auto' or 'none' needs tools, which are not supported")
    if body.include:
        raise refused("include", "include is not supported (nothing extra can be included)")
    if body.truncation == "auto":
        raise refused("truncation", "truncation 'auto' is not supported: a conversation too long is a 413")
    if body.stream_options and any(body.stream_options.values()):
        raise refused("stream_options", "stream_options (include_obfuscation) are not supported")
    _check_text(body.text)


def _check_text(text: dict[str, Any] | None) -> None:
    for key, value in (text or {}).items():
        if key == "format":
            if not isinstance(value, dict) or value.get("type") != "text":
                raise refused("text.format", "text.format other than {'type': 'text'} is not supported yet")
        elif value is not None:
            raise refused(f"text.{key}", f"text.{key} is not supported")


def generation_options(body: ResponseCreateRequest, provider: str | None) -> GenerationOptions | None:
    """The options for the model call (``max_output_tokens``, ``temperature``, ``top_p``, ``user``)."""
    options = GenerationOptions(
        max_tokens=body.max_output_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        user=body.user if passes_user(provider) else None,
    )
    return options if options.model_settings() else None


def _text(content: Any, role: str, param: str) -> str:
    """A message's text: a string, or parts of the one text type its role takes."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid(param, "content must be a string or a list of content parts")
    wanted = _PART_TYPES[role]
    texts = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != wanted:
            why = "image parts need a model with vision" if kind == "input_image" else f"{wanted} parts only"
            raise refused(f"{param}[{index}]", f"content part of type {kind!r} is not supported: {why}")
        texts.append(str(part.get("text", "")))
    return "".join(texts)


def _turn(item: Any, index: int, allow_system: bool) -> ChatTurn:
    param = f"input[{index}]"
    if not isinstance(item, dict):
        raise _invalid(param, "an input item must be an object")
    kind = item.get("type", "message")
    if kind != "message":
        raise refused(f"{param}.type", f"input items of type {kind!r} are not supported (only messages)")
    role = _ROLES.get(str(item.get("role")))
    if role is None:
        raise _invalid(f"{param}.role", "role must be one of user, assistant, system, developer")
    if role == "system" and not allow_system:
        raise refused(f"{param}.role", "this template does not accept client system messages")
    return ChatTurn(role=role, content=_text(item.get("content"), role, f"{param}.content"))


def input_turns(body: ResponseCreateRequest, *, allow_system: bool) -> tuple[list[ChatTurn], str]:
    """The earlier turns of ``input`` (oldest first) and the text of its last item, a user message."""
    if isinstance(body.input, str):
        if not body.input.strip():
            raise _invalid("input", "input must hold text")
        return [], body.input
    if not body.input:
        raise _invalid("input", "input must hold at least one message")
    turns = [_turn(item, i, allow_system) for i, item in enumerate(body.input)]
    last = len(turns) - 1
    if turns[last].role != "user" or not turns[last].content.strip():
        raise _invalid(f"input[{last}]", "the last input item must be a user message with text")
    return turns[:last], turns[last].content


def instructions_turn(body: ResponseCreateRequest, *, allow_system: bool) -> list[ChatTurn]:
    """``instructions`` as a system turn ahead of the conversation (for this response only, as OpenAI's)."""
    if not body.instructions:
        return []
    if not allow_system:
        raise refused("instructions", "this template does not accept client system messages (instructions)")
    return [ChatTurn(role="system", content=body.instructions)]


def check_continued(turns: list[ChatTurn], *, allow_system: bool) -> list[ChatTurn]:
    """The conversation ``previous_response_id`` continues, refused when it holds system messages that
    this template does not accept (it may have been held by another template)."""
    if not allow_system and any(turn.role == "system" for turn in turns):
        raise refused(
            "previous_response_id", "the conversation holds system messages, which this template does not accept"
        )
    return turns
