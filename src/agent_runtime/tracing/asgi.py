"""``TracingASGIMiddleware``: one server span per HTTP request, continuing the client's W3C trace."""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode

from agent_runtime.tracing import attributes as attr

__all__ = ["TracingASGIMiddleware"]

Scope = dict[str, Any]


class TracingASGIMiddleware:
    """Extracts ``traceparent`` / ``tracestate`` from the request headers and makes the request's server
    span current for the whole request, so the run span is its child."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._tracer = trace.get_tracer(attr.TRACER_NAME)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        parent = extract(carrier)
        method, path = scope.get("method", "GET"), scope.get("path", "/")
        with self._tracer.start_as_current_span(
            f"{method} {path}", context=parent, kind=SpanKind.SERVER, record_exception=False
        ) as span:
            span.set_attributes(
                {"http.request.method": method, "url.path": path, "url.scheme": scope.get("scheme", "http")}
            )

            async def traced_send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, traced_send)


def current_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``, ``tracestate``), for outgoing messages."""
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def attach_carrier(carrier: dict[str, str]) -> object:
    """Make the trace context carried by ``carrier`` current; returns the token for ``detach``."""
    return otel_context.attach(extract(carrier))
