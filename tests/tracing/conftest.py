from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent_runtime.tracing import config, configure_tracing

_EXPORTER = InMemorySpanExporter()
_INSTALLED: list[bool] = []


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for one test, finished spans in memory; off again afterwards."""
    if not _INSTALLED:
        configure_tracing({}, processor=SimpleSpanProcessor(_EXPORTER))
        _INSTALLED.append(True)
    config._state["enabled"] = True
    _EXPORTER.clear()
    yield _EXPORTER
    config._state["enabled"] = False
    _EXPORTER.clear()
