"""``TracingObserver``: the run span (``invoke_agent {template}``), current while the run executes."""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.tracing import attributes as attr
from agent_runtime.types import AgentContext, AgentResult, ToolCallRecord

__all__ = ["TracingObserver"]

_KEY = "_tracing_span"


class TracingObserver:
    """A ``RunObserver``: opens the run span in ``run_started`` and makes it current, so the middleware
    stages' events and the model and tool spans nest under it; closes it with status, usage and cost."""

    def __init__(self) -> None:
        self._tracer = trace.get_tracer(attr.TRACER_NAME)

    def run_started(self, context: AgentContext) -> None:
        span = self._tracer.start_span(f"invoke_agent {context.template}", kind=SpanKind.INTERNAL)
        span.set_attributes(_context_attributes(context))
        token = otel_context.attach(trace.set_span_in_context(span))
        context.state[_KEY] = (span, token)

    def run_finished(self, context: AgentContext, result: AgentResult) -> None:
        span = self._close(context)
        if span is None:
            return
        usage = result.usage
        span.set_attributes(
            {
                "agent_runtime.run.status": result.status,
                "agent_runtime.run.attempts": result.attempts,
                "agent_runtime.run.cost_usd": usage.cost_usd,
                attr.GEN_AI_INPUT_TOKENS: usage.input_tokens,
                attr.GEN_AI_OUTPUT_TOKENS: usage.output_tokens,
                attr.GEN_AI_RESPONSE_MODEL: result.model,
            }
        )
        span.end()

    def run_failed(self, context: AgentContext, error: AgentRuntimeError, duration_s: float) -> None:
        span = self._close(context)
        if span is None:
            return
        span.set_attribute("agent_runtime.run.status", "failed")
        span.set_attribute(attr.ERROR_CODE, error.code)
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, error.code))
        span.end()

    def tool_called(self, context: AgentContext, call: ToolCallRecord) -> None:
        """Tool calls have their own spans (``GenAISpanHandler``)."""

    @staticmethod
    def _close(context: AgentContext) -> Span | None:
        entry = context.state.pop(_KEY, None)
        if entry is None:
            return None
        span, token = entry
        if context.principal is not None:  # authentication runs inside the chain, after run_started
            span.set_attribute("agent_runtime.tenant", context.principal.tenant)
        otel_context.detach(token)  # logs (never raises) if the run ended in another context
        return span  # type: ignore[no-any-return]


def _context_attributes(context: AgentContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        attr.GEN_AI_OPERATION: "invoke_agent",
        "gen_ai.agent.name": context.template,
        "agent_runtime.run_id": context.run_id,
        "agent_runtime.template": context.template,
        "agent_runtime.attempt": context.attempt,
        "agent_runtime.streaming": context.streaming,
    }
    if context.session_id:
        out["gen_ai.conversation.id"] = context.session_id
    if context.principal is not None:
        out["agent_runtime.tenant"] = context.principal.tenant
    if context.request_id:
        out["agent_runtime.request_id"] = context.request_id
    return out
