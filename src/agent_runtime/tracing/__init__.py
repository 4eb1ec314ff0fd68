"""OpenTelemetry traces with the GenAI semantic conventions; off unless ``OTEL_TRACES_EXPORTER`` is set.

- ``TracingASGIMiddleware``: the HTTP server span, continuing the client's ``traceparent``.
- ``TracingObserver``: the run span (``invoke_agent {template}``), current while the run executes.
- ``GenAISpanHandler``: ``chat {model}`` and ``execute_tool {name}`` spans from LangChain callbacks.
- ``run_callbacks()``: the per-run callback handlers tracing adds (none when tracing is off).
"""

from __future__ import annotations

from langchain_core.callbacks import BaseCallbackHandler

from agent_runtime.tracing.asgi import TracingASGIMiddleware, attach_carrier, current_carrier
from agent_runtime.tracing.config import capture_content, configure_tracing, tracing_enabled
from agent_runtime.tracing.handler import GenAISpanHandler
from agent_runtime.tracing.logs import trace_ids
from agent_runtime.tracing.observer import TracingObserver

__all__ = [
    "GenAISpanHandler",
    "TracingASGIMiddleware",
    "TracingObserver",
    "attach_carrier",
    "capture_content",
    "configure_tracing",
    "current_carrier",
    "run_callbacks",
    "trace_ids",
    "tracing_enabled",
]


def run_callbacks() -> list[BaseCallbackHandler]:
    """One ``GenAISpanHandler`` for a run when tracing is on, else nothing."""
    return [GenAISpanHandler()] if tracing_enabled() else []
