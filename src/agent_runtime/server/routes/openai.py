"""OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models``: a template is a "model".

``model`` is a template name, or ``template@model`` to pick the model too (``offline``, or any model
string for tokens with the ``models:override`` scope). The conversation is the ``messages`` list: the
last message (a user's) is the run's input, the earlier ones (system, user, assistant with its
``tool_calls``, tool results) reach the agent in order after the template's own system prompt. With
a session (``X-Session-Id`` header or ``metadata.session_id``, created on first use) the stored
conversation is authoritative: only the messages after the client's last assistant message are
appended to it (so a client may send the whole history, or only its new message, each turn).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from agent_runtime.models.resolve import provider_of
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime
from agent_runtime.server.errors import error_body, http_status
from agent_runtime.server.routes._docs import ERRORS, errors
from agent_runtime.server.routes._openai_request import (
    conversation,
    generation_options,
    paused_error,
    refuse_unsupported,
)
from agent_runtime.server.routes.runs import aclose, build_context, error_from_event, open_stream
from agent_runtime.server.schemas import ID_PATTERN, ModelList, ModelOut
from agent_runtime.server.schemas_openai import ChatCompletion, ChatCompletionRequest
from agent_runtime.server.sse import EventStreamResponse, sse_data
from agent_runtime.types import AgentResult, StreamEvent

__all__ = ["router"]

router = APIRouter(tags=["openai"])
_OWNER = "agent-runtime"
_CREATED = 1_700_000_000
"""Templates have no creation time; a fixed one keeps ``/v1/models`` stable across workers."""


def _completion_id(run_id: str) -> str:
    return "chatcmpl-" + run_id.removeprefix("run_")


def _usage(result: AgentResult) -> dict[str, Any]:
    usage = result.usage
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _finish_reason(result: AgentResult) -> str:
    return "length" if result.metadata.get("finish_reason") == "length" else "stop"


class _Chunks:
    """Builds ``chat.completion.chunk`` objects that all share one id, creation time and model."""

    def __init__(self, run_id: str, model: str, *, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.base: dict[str, Any] = {
            "id": _completion_id(run_id),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
        }
        if include_usage:  # OpenAI's shape: every chunk but the last says ``"usage": null``
            self.base["usage"] = None

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self.base, "choices": [choice]}

    def usage(self, result: AgentResult) -> dict[str, Any]:
        return {**self.base, "choices": [], "usage": _usage(result)}


async def _chunks(
    first: StreamEvent, stream: AsyncIterator[StreamEvent], chunks: _Chunks, *, final_only: bool
) -> AsyncIterator[bytes]:
    """Tokens become content deltas; the agent's own tool calls stay internal (they are not the
    client's tools); the end is a ``finish_reason`` chunk, the usage chunk when asked, ``[DONE]``.

    ``final_only`` (a workflow): the steps' tokens are not the answer, the final output is; it is sent
    as one delta, so the stream carries what the non-streamed answer does."""
    try:
        yield sse_data(chunks.delta({"role": "assistant", "content": ""}))
        event: StreamEvent | None = first
        while event is not None:
            if event.type == "token" and not final_only:
                yield sse_data(chunks.delta({"content": event.text}))
            elif event.type == "final":
                result = AgentResult.model_validate(event.data)
                if result.status == "interrupted":
                    paused = paused_error(result)
                    yield sse_data(error_body(http_status(paused), paused.code, paused.message, details=paused.details))
                    break
                if final_only and result.output:
                    yield sse_data(chunks.delta({"content": result.output}))
                yield sse_data(chunks.delta({}, _finish_reason(result)))
                if chunks.include_usage:
                    yield sse_data(chunks.usage(result))
            elif event.type == "error":
                error = error_from_event(event.data)
                yield sse_data(error_body(http_status(error), error.code, error.message))
            event = await anext(stream, None)
        yield sse_data("[DONE]")
    finally:
        await aclose(stream)


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": "Completion"},
        **ERRORS,
    },
    summary="OpenAI-compatible chat completion (a template is a model)",
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    x_session_id: Annotated[str | None, Header(pattern=ID_PATTERN, description="Continue this session.")] = None,
) -> Any:
    template_name, _, model = body.model.partition("@")
    refuse_unsupported(body)
    template = runtime.factory.get_template(template_name)
    history, text = conversation(body, allow_system=template.client_system_messages)
    session_id = x_session_id or (body.metadata.session_id if body.metadata else None)
    client: dict[str, Any] = {"openai_user": body.user} if body.user else {}
    context = build_context(
        runtime,
        principal,
        request,
        template=template_name,
        text=text,
        session_id=session_id,
        model=model or None,
        create_session=session_id is not None,
        client_metadata=client,
    )
    provider = provider_of(runtime.factory.model_for(template, model or None))
    context.history, context.generation = history, generation_options(body, provider)
    if not body.stream:
        result = await runtime.executor.execute_with_retry(context)
        if result.status == "interrupted":
            raise paused_error(result)
        return {
            "id": _completion_id(result.run_id),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.output, "refusal": None},
                    "finish_reason": _finish_reason(result),
                    "logprobs": None,
                }
            ],
            "usage": _usage(result),
            "system_fingerprint": None,
        }
    first, stream = await open_stream(runtime, context)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    chunks = _Chunks(context.run_id, body.model, include_usage=include_usage)
    body_stream = _chunks(first, stream, chunks, final_only=template.workflow is not None)
    return EventStreamResponse(body_stream, headers={"X-Run-Id": context.run_id})


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _CREATED, "owned_by": _OWNER}


@router.get("/v1/models", response_model=ModelList, responses=errors(401), summary="Templates, as OpenAI models")
async def list_models(principal: CurrentPrincipal, runtime: CurrentRuntime) -> dict[str, Any]:
    return {"object": "list", "data": [_model(t.name) for t in runtime.factory.list_templates()]}


@router.get("/v1/models/{model}", response_model=ModelOut, responses=errors(401, 404), summary="One model")
async def get_model(model: str, principal: CurrentPrincipal, runtime: CurrentRuntime) -> dict[str, Any]:
    return _model(runtime.factory.get_template(model).name)
