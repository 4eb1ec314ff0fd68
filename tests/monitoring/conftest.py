"""Fixtures for the monitoring tests: AgentResult builder and a usage store per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.monitoring.usage import UsageStore
from agent_runtime.types import AgentResult, ToolCallRecord, Usage
from tests.backends import STATE_BACKENDS, build_store


def _make_result(
    template: str = "analyst",
    model: str = "offline",
    *,
    input_tokens: int = 100,
    output_tokens: int = 20,
    cached_tokens: int = 0,
    cost_usd: float = 0.0,
    status: str = "completed",
    duration_ms: float = 50.0,
    ttft_ms: float | None = None,
    tools: tuple[tuple[str, str], ...] = (),
    error: dict[str, Any] | None = None,
) -> AgentResult:
    return AgentResult(
        run_id="run_test",
        template=template,
        model=model,
        output="ok",
        status=status,  # type: ignore[arg-type]
        usage=Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
            cached_tokens=cached_tokens,
            cost_usd=cost_usd,
        ),
        tool_calls=[ToolCallRecord(id=f"c{i}", name=name, status=st) for i, (name, st) in enumerate(tools)],  # type: ignore[arg-type]
        duration_ms=duration_ms,
        time_to_first_token_ms=ttft_ms,
        error=error,
    )


@pytest.fixture
def make_result() -> Callable[..., AgentResult]:
    """Builds an ``AgentResult`` with the given usage, status, timing and tool calls."""
    return _make_result


@pytest.fixture(params=STATE_BACKENDS)
async def usage_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UsageStore]:
    store: UsageStore = build_store("usage", request.param, request, tmp_path)
    yield store
    await store.aclose()
