"""Request and response bodies of ``/v1/responses`` (OpenAI's Responses API), with OpenAI's ranges.

Only the parameters this server honours are declared; any other parameter with a value is a 400
naming it (``routes/_responses_input.py``), so nothing a client sends is silently dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from agent_runtime.server.schemas import ID_PATTERN, TEXT_PATTERN

__all__ = [
    "InputTokensDetails",
    "OutputMessage",
    "OutputText",
    "OutputTokensDetails",
    "ResponseCreateRequest",
    "ResponseDeleted",
    "ResponseItemList",
    "ResponseObject",
    "ResponseUsage",
]

_MetadataKey = Annotated[str, StringConstraints(max_length=64)]
_MetadataValue = Annotated[str, StringConstraints(max_length=512)]
_USER_MESSAGE = {
    "type": "object",
    "properties": {
        "type": {"const": "message"},
        "role": {"const": "user"},
        "content": {"type": "string", "pattern": TEXT_PATTERN},
    },
    "required": ["role", "content"],
}
_INPUT_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string", "pattern": TEXT_PATTERN},
            {"type": "array", "minItems": 1, "items": _USER_MESSAGE},
        ],
        "description": "Text, or messages oldest first ending with a user message. Documented here as user "
        "messages only; `assistant`, `system` and `developer` messages are accepted as in OpenAI's API, and "
        "content may be a list of `input_text` parts (`output_text` for assistant messages). Other item types "
        "(function calls, images, files) are a 400 naming them.",
    }
)
_TEXT_CONFIG = WithJsonSchema(
    {
        "anyOf": [
            {"type": "null"},
            {
                "type": "object",
                "properties": {
                    "format": {"type": "object", "properties": {"type": {"const": "text"}}, "required": ["type"]}
                },
                "additionalProperties": False,
            },
        ],
        "description": 'Only `{"format": {"type": "text"}}`; `json_schema`, `json_object`, `verbosity`: 400.',
    }
)
_STREAM_OPTIONS = WithJsonSchema(
    {
        "anyOf": [
            {"type": "null"},
            {"type": "object", "properties": {"include_obfuscation": {"const": False}}, "additionalProperties": False},
        ],
        "description": "`include_obfuscation: true` is a 400.",
    }
)
_NO_TOOLS = WithJsonSchema(
    {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}], "description": "Function tools: 400 (not yet)."}
)
_NOTHING_INCLUDED = WithJsonSchema(
    {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}], "description": "Anything to include: 400."}
)
_TOOL_CHOICE = WithJsonSchema({"enum": ["auto", "none", None], "description": "Others need tools: 400."})
_TRUNCATION = WithJsonSchema({"enum": ["disabled", None], "description": '`"auto"`: 400.'})


class ResponseCreateRequest(BaseModel):
    """``POST /v1/responses``: every parameter is honoured or refused with a 400 naming it."""

    # extras are kept to be refused by name (400, ``param``), as OpenAI refuses an unknown parameter
    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})

    model: str = Field(
        max_length=264, pattern=r"^[a-z][a-z0-9_\-]{0,63}(@.+)?$", description="A template name, or `template@model`."
    )
    input: Annotated[str | list[dict[str, Any]], _INPUT_SCHEMA]
    instructions: str | None = Field(
        default=None, pattern=r"^[^\x00]*$", description="A system message for this response only."
    )
    previous_response_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="Continue the conversation of this stored response."
    )
    stream: bool = False
    stream_options: Annotated[dict[str, Any] | None, _STREAM_OPTIONS] = None
    store: bool = Field(default=True, description="Keep the response for `GET` and `previous_response_id`.")
    max_output_tokens: int | None = Field(default=None, ge=16, description="Bound on each model call's output.")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    metadata: dict[_MetadataKey, _MetadataValue] | None = Field(default=None, max_length=16)
    user: str | None = Field(default=None, max_length=256, description="Recorded and passed to the model.")
    parallel_tool_calls: bool | None = None
    tools: Annotated[list[dict[str, Any]] | None, _NO_TOOLS] = None
    tool_choice: Annotated[str | dict[str, Any] | None, _TOOL_CHOICE] = None
    include: Annotated[list[str] | None, _NOTHING_INCLUDED] = None
    truncation: Annotated[Literal["auto", "disabled"] | None, _TRUNCATION] = None
    text: Annotated[dict[str, Any] | None, _TEXT_CONFIG] = None


class OutputText(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(BaseModel):
    type: Literal["message"] = "message"
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseObject(BaseModel):
    """A response as OpenAI's ``Response`` type reads it (``openai.types.responses.Response``)."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    completed_at: int | None = None
    status: Literal["completed", "incomplete", "in_progress", "failed"]
    error: dict[str, Any] | None = None
    incomplete_details: dict[str, Any] | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    model: str
    output: list[OutputMessage]
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    store: bool = True
    temperature: float | None = None
    top_p: float | None = None
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: str = "auto"
    tools: list[Any] = Field(default_factory=list)
    truncation: Literal["disabled"] = "disabled"
    background: bool = False
    usage: ResponseUsage | None = None
    user: str | None = None


class ResponseDeleted(BaseModel):
    id: str
    object: Literal["response.deleted"] = "response.deleted"
    deleted: bool = True


class ResponseItemList(BaseModel):
    """A page of a response's input items (``message`` items, in the requested order)."""

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False
