"""``GenAISpanHandler``: a LangChain callback handler that opens a ``chat {model}`` span per model call
and an ``execute_tool {name}`` span per tool call, with the GenAI semantic convention attributes.

Spans are children of the span current when LangChain calls the handler: the run span the
``TracingObserver`` made current. The handler runs inline (on the event loop, no thread hop).
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agent_runtime.callbacks.handler import _usage_of
from agent_runtime.tracing import attributes as attr
from agent_runtime.tracing.config import capture_content

__all__ = ["GenAISpanHandler"]


def _redacted(value: Any) -> str:
    from agent_runtime.orchestration.middleware.logging import redact  # the logs' redactor; lazy: no cycle

    return str(redact(value))


class GenAISpanHandler(BaseCallbackHandler):
    run_inline = True

    def __init__(self, *, record_content: bool | None = None) -> None:
        self._tracer = trace.get_tracer(attr.TRACER_NAME)
        self._spans: dict[UUID, Span] = {}
        self._started: dict[UUID, float] = {}
        self._content = capture_content() if record_content is None else record_content

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        meta = kwargs.get("metadata") or {}
        model = str(meta.get("ls_model_name") or (kwargs.get("invocation_params") or {}).get("model") or "unknown")
        span = self._tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT)
        span.set_attribute(attr.GEN_AI_OPERATION, "chat")
        span.set_attribute(attr.GEN_AI_PROVIDER, str(meta.get("ls_provider") or "unknown"))
        span.set_attribute(attr.GEN_AI_REQUEST_MODEL, model)
        if self._content:
            text = [[getattr(m, "content", str(m)) for m in batch] for batch in messages]
            span.set_attribute(attr.GEN_AI_INPUT_MESSAGES, _redacted(text))
        self._spans[run_id] = span
        self._started[run_id] = time.perf_counter()

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        started = self._started.pop(run_id, None)
        span = self._spans.get(run_id)
        if started is not None and span is not None:
            span.set_attribute(attr.TIME_TO_FIRST_TOKEN, time.perf_counter() - started)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._started.pop(run_id, None)
        span = self._spans.pop(run_id, None)
        if span is None:
            return
        usage = _usage_of(response)
        span.set_attribute(attr.GEN_AI_INPUT_TOKENS, usage.get("input_tokens", 0))
        span.set_attribute(attr.GEN_AI_OUTPUT_TOKENS, usage.get("output_tokens", 0))
        model, reasons, texts = _response_of(response)
        if model:
            span.set_attribute(attr.GEN_AI_RESPONSE_MODEL, model)
        if reasons:
            span.set_attribute(attr.GEN_AI_FINISH_REASONS, reasons)
        if self._content:
            span.set_attribute(attr.GEN_AI_OUTPUT_MESSAGES, _redacted(texts))
        span.end()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._started.pop(run_id, None)
        self._fail(run_id, error)

    def on_tool_start(self, serialized: dict[str, Any], input_str: str, *, run_id: UUID, **kwargs: Any) -> None:
        name = str((serialized or {}).get("name") or kwargs.get("name") or "tool")
        span = self._tracer.start_span(f"execute_tool {name}", kind=SpanKind.INTERNAL)
        span.set_attribute(attr.GEN_AI_OPERATION, "execute_tool")
        span.set_attribute(attr.GEN_AI_TOOL_NAME, name)
        call_id = (kwargs.get("inputs") or {}).get("tool_call_id") if isinstance(kwargs.get("inputs"), dict) else None
        if call_id:
            span.set_attribute(attr.GEN_AI_TOOL_CALL_ID, str(call_id))
        self._spans[run_id] = span

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        span = self._spans.pop(run_id, None)
        if span is not None:
            span.set_attribute("agent_runtime.tool.outcome", "ok")
            span.end()

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._fail(run_id, error, tool=True)

    def _fail(self, run_id: UUID, error: BaseException, *, tool: bool = False) -> None:
        span = self._spans.pop(run_id, None)
        if span is None:
            return
        code = str(getattr(error, "code", None) or type(error).__name__)
        span.set_attribute(attr.ERROR_CODE, code)
        if tool:
            span.set_attribute("agent_runtime.tool.outcome", "error")
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, code))
        span.end()


def _response_of(response: LLMResult) -> tuple[str | None, list[str], list[str]]:
    """The answering model, the finish reasons and the completion texts of one model call."""
    model = (response.llm_output or {}).get("model_name")
    reasons: list[str] = []
    texts: list[str] = []
    for batch in response.generations:
        for generation in batch:
            texts.append(generation.text)
            meta = getattr(getattr(generation, "message", None), "response_metadata", None) or {}
            model = model or meta.get("model_name") or meta.get("model")
            reason = (generation.generation_info or {}).get("finish_reason") or meta.get("finish_reason")
            if reason:
                reasons.append(str(reason))
    return (str(model) if model else None), reasons, texts
