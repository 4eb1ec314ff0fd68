from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import ProviderRateLimitError
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.orchestration.middleware.logging import JsonFormatter
from agent_runtime.tracing import GenAISpanHandler, TracingObserver, capture_content, configure_tracing, run_callbacks
from agent_runtime.types import AgentContext
from tests.helpers import FlakyModel, ProviderRateLimited, resolver_for


def _by_name(spans: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for span in spans.get_finished_spans():
        out.setdefault(span.name, []).append(span)
    return out


def _executor(factory: AgentFactory | None = None) -> AgentExecutor:
    return AgentExecutor(factory or AgentFactory(), observers=[TracingObserver()])


async def test_a_run_with_a_tool_call_nests_chat_and_tool_spans_under_the_run(spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("client") as client:
        result = await _executor().execute_async(AgentContext(input="what is 17*23+4?", template="analyst"))
    named = _by_name(spans)
    run = named["invoke_agent analyst"][0]
    assert run.parent is not None and run.parent.span_id == client.get_span_context().span_id
    assert run.attributes["agent_runtime.run_id"] == result.run_id
    assert run.attributes["agent_runtime.run.status"] == "completed"
    assert run.attributes["gen_ai.usage.input_tokens"] == result.usage.input_tokens > 0
    assert run.attributes["agent_runtime.run.cost_usd"] == result.usage.cost_usd
    chats = [s for name, group in named.items() if name.startswith("chat ") for s in group]
    assert len(chats) == 2  # the tool call, then the answer
    for chat in chats:
        assert chat.parent is not None and chat.parent.span_id == run.context.span_id
        assert chat.kind is SpanKind.CLIENT and chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] and chat.attributes["gen_ai.provider.name"]
        assert chat.attributes["gen_ai.usage.output_tokens"] > 0
        assert "gen_ai.input.messages" not in chat.attributes  # content is off by default
    tool = named["execute_tool calculator"][0]
    assert tool.parent is not None and tool.parent.span_id == run.context.span_id
    assert tool.attributes["gen_ai.tool.name"] == "calculator"
    assert tool.attributes["agent_runtime.tool.outcome"] == "ok"
    assert len({s.context.trace_id for s in spans.get_finished_spans()}) == 1


async def test_a_streamed_run_records_time_to_first_token(spans: InMemorySpanExporter) -> None:
    executor = _executor()
    events = [e async for e in executor.execute_stream(AgentContext(input="what is 10/4?", template="analyst"))]
    assert events[-1].type == "final"
    named = _by_name(spans)
    run = named["invoke_agent analyst"][0]
    assert run.attributes["agent_runtime.streaming"] is True
    chats = [s for name, group in named.items() if name.startswith("chat ") for s in group]
    assert chats and all(c.parent is not None and c.parent.span_id == run.context.span_id for c in chats)
    assert any(c.attributes.get("gen_ai.response.time_to_first_chunk", -1) >= 0 for c in chats)


async def test_an_error_run_records_the_runtime_error_code(spans: InMemorySpanExporter) -> None:
    model = FlakyModel(failures=99, error=lambda: ProviderRateLimited("slow down"))
    with pytest.raises(ProviderRateLimitError):
        await _executor(AgentFactory(model_resolver=resolver_for(model))).execute_async(
            AgentContext(input="hello", template="writer")
        )
    run = _by_name(spans)["invoke_agent writer"][0]
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["error.type"] == ProviderRateLimitError.code
    assert run.attributes["agent_runtime.run.status"] == "failed"
    assert any(event.name == "exception" for event in run.events)


async def test_content_is_recorded_only_when_enabled_and_redacted(spans: InMemorySpanExporter) -> None:
    handler = GenAISpanHandler(record_content=True)
    agent = AgentFactory().create_from_template("analyst")
    secret = "sk-" + "a" * 40
    ask = {"messages": [{"role": "user", "content": f"what is 2+3? key {secret}"}]}
    await agent.ainvoke(ask, {"callbacks": [handler]})
    chats = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    recorded = str(chats[0].attributes["gen_ai.input.messages"])
    assert "2+3" in recorded and secret not in recorded
    assert capture_content({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})
    assert not capture_content({})


def test_json_log_lines_carry_trace_and_span_ids(spans: InMemorySpanExporter) -> None:
    record = logging.LogRecord("agent_runtime.test", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
    with trace.get_tracer("test").start_as_current_span("s") as span:
        line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")


def test_off_by_default_and_bad_exporters_are_refused() -> None:
    assert run_callbacks() == []
    assert configure_tracing({}) is False
    with pytest.raises(ValueError, match="not supported"):
        configure_tracing({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValueError, match="not supported"):
        configure_tracing({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
