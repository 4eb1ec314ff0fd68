"""Trace and span ids for JSON log lines, when a span is recording."""

from __future__ import annotations

from opentelemetry import trace

__all__ = ["trace_ids"]


def trace_ids() -> dict[str, str]:
    """``{"trace_id", "span_id"}`` of the current span as lowercase hex, or ``{}`` when none is active."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {"trace_id": format(span_context.trace_id, "032x"), "span_id": format(span_context.span_id, "016x")}
