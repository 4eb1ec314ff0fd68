"""Tracing configuration from the standard ``OTEL_*`` variables; off unless an exporter is named.

``OTEL_TRACES_EXPORTER`` (``otlp``, ``console``; unset or ``none``: off), ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf``), ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME`` and
``OTEL_TRACES_SAMPLER`` are read by the OpenTelemetry SDK itself. When tracing is off no SDK provider is
installed and the runtime adds no observer, callback or middleware: the cost is one flag test per run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

__all__ = ["CONTENT_ENV", "capture_content", "configure_tracing", "tracing_enabled"]

CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_state: dict[str, bool] = {"enabled": False}


def tracing_enabled() -> bool:
    """True once ``configure_tracing`` installed a provider (or a test called it with a processor)."""
    return _state["enabled"]


def capture_content(env: Mapping[str, str] | None = None) -> bool:
    """Prompt and completion text is recorded only when the GenAI content capture setting is ``true``."""
    return (env if env is not None else os.environ).get(CONTENT_ENV, "").strip().lower() == "true"


def _exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={name!r} is not supported (otlp, console, none)")
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    if protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported (http/protobuf)")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint and headers from OTEL_EXPORTER_OTLP_*


def configure_tracing(env: Mapping[str, str] | None = None, *, processor: SpanProcessor | None = None) -> bool:
    """Install an SDK tracer provider if ``OTEL_TRACES_EXPORTER`` names an exporter (or ``processor`` is
    given); returns whether tracing is on. Safe to call more than once: the first provider stays."""
    env = env if env is not None else os.environ
    name = env.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if processor is None and (name in ("", "none") or _state["enabled"]):
        return _state["enabled"]  # off, or already on: the app and the runtime both ask
    if processor is None:
        processor = BatchSpanProcessor(_exporter(name, env))
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        current.add_span_processor(processor)
    else:
        provider = TracerProvider(
            resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "agent-runtime")})
        )
        provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
    _state["enabled"] = True
    return True
