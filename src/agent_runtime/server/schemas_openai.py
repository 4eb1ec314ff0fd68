"""Request and response bodies of ``POST /v1/chat/completions``, with OpenAI's ranges.

A value outside OpenAI's range is a 400 naming the parameter (``param``), as OpenAI answers it.
Parameters this server does not implement are typed here only so the route can refuse them by name
(see ``routes/_openai_request.py``) instead of ignoring them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from agent_runtime.server.schemas import ID_PATTERN, TEXT_PATTERN

__all__ = [
    "ChatCompletion",
    "ChatCompletionRequest",
    "ChatMessage",
    "ChatMetadata",
    "StreamOptions",
]


class ChatMessage(BaseModel):
    """One message of an OpenAI chat request."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = Field(default=None, max_length=256)
    tool_calls: list[dict[str, Any]] | None = None
    """An assistant message's calls: ``{"id", "type": "function", "function": {"name", "arguments"}}``."""
    tool_call_id: str | None = Field(default=None, max_length=256)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatMetadata(BaseModel):
    """OpenAI's free-form string metadata; ``session_id`` names the session to continue."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str] = Field(init=False)

    session_id: str | None = Field(default=None, pattern=ID_PATTERN)


_USER_MESSAGE = {
    "type": "object",
    "properties": {"role": {"const": "user"}, "content": {"type": "string", "pattern": TEXT_PATTERN}},
    "required": ["role", "content"],
}
_MESSAGES_SCHEMA = WithJsonSchema(
    {
        "type": "array",
        "minItems": 1,
        "items": _USER_MESSAGE,
        "description": "The conversation, oldest first, ending with the user message this run answers. "
        "Documented here as user messages only; `system`/`developer`, `assistant` (with `tool_calls`) and "
        "`tool` messages are accepted as in OpenAI's API (see the README's compatibility table).",
    }
)
_REFUSED = WithJsonSchema({"type": "null", "description": "Not supported yet: any value is a 400 naming it."})
_TEXT_FORMAT = WithJsonSchema(
    {
        "anyOf": [
            {"type": "null"},
            {"type": "object", "properties": {"type": {"const": "text"}}, "required": ["type"]},
        ],
        "description": 'Only `{"type": "text"}`; `json_object` / `json_schema` are a 400 (not supported yet).',
    }
)
_Stop = Annotated[list[str], Field(max_length=4)]


class ChatCompletionRequest(BaseModel):
    """OpenAI's request: every parameter is honoured or refused with a 400 naming it (README's table)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(
        max_length=264, pattern=r"^[a-z][a-z0-9_\-]{0,63}(@.+)?$", description="A template name, or `template@model`."
    )
    messages: Annotated[list[ChatMessage], _MESSAGES_SCHEMA] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, max_length=256, description="Recorded and passed to the model.")
    metadata: ChatMetadata | None = Field(default=None, description="`session_id` here continues a session.")
    max_tokens: int | None = Field(default=None, ge=1, description="Bound on each model call's output.")
    max_completion_tokens: int | None = Field(default=None, ge=1, description="Same as `max_tokens` (wins).")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    stop: str | _Stop | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    n: int | None = Field(default=None, ge=1, le=128, json_schema_extra={"maximum": 1}, description="Only 1.")
    logprobs: bool | None = Field(default=None, json_schema_extra={"enum": [False, None]}, description="`true`: 400.")
    top_logprobs: int | None = Field(default=None, ge=0, le=20, json_schema_extra={"maximum": 0})
    modalities: list[Literal["text", "audio"]] | None = Field(
        default=None, json_schema_extra={"items": {"const": "text"}}, description='Only `["text"]`.'
    )
    audio: Annotated[dict[str, Any] | None, _REFUSED] = None
    tools: Annotated[list[dict[str, Any]] | None, _REFUSED] = None
    tool_choice: Annotated[str | dict[str, Any] | None, _REFUSED] = None
    response_format: Annotated[dict[str, Any] | None, _TEXT_FORMAT] = None


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class ChatCompletionChoice(BaseModel):
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"]
    logprobs: None = None


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatCompletionChoice]
    usage: CompletionUsage
    system_fingerprint: str | None = None
