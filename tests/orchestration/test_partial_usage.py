"""A run that fails part way is charged for the model calls it already made: the provider billed them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import RunTimeoutError
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.orchestration.middleware._accounting import error_usage
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal

ASK = 'use slow_tool {"text": "x"}'
ACME = Principal(tenant="acme", user="ann", scopes=frozenset({"agents:run:*"}))


async def slow_tool(text: str) -> str:
    """Publish the text."""
    await asyncio.sleep(5)  # slower than the run's timeout
    return text


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = await Runtime.create(Settings(state_backend="memory", data_dir=tmp_path), with_event_bus=False)
    rt.factory.register_tool(slow_tool)
    rt.factory.register_template({"name": "stalls", "tools": ["slow_tool"]})
    yield rt
    await rt.aclose()


async def _whole_run_tokens() -> int:
    """What the same run costs when its tool answers: the call before the tool, and the answer after."""

    async def slow_tool(text: str) -> str:
        """Publish the text."""
        return text

    factory = AgentFactory()
    factory.register_tool(slow_tool)
    factory.register_template({"name": "stalls", "tools": ["slow_tool"]})
    done = await AgentExecutor(factory).execute_async(AgentContext(input=ASK, template="stalls"))
    assert done.tool_calls[0].name == "slow_tool"
    return done.usage.total_tokens


@pytest.mark.parametrize("mode", ["async", "stream"])
async def test_a_run_that_times_out_after_a_model_call_is_charged_for_it(runtime: Runtime, mode: str) -> None:
    context = AgentContext(input=ASK, template="stalls", timeout_s=0.5, principal=ACME)
    if mode == "async":
        with pytest.raises(RunTimeoutError) as failed:
            await runtime.executor.execute_async(context)
        charged = error_usage(failed.value).total_tokens
    else:
        events = [e async for e in runtime.executor.execute_stream(context)]
        assert [e.type for e in events][-1] == "error" and events[-1].data["code"] == "timeout"
        charged = -1
    (row,) = await runtime.cost_tracker.report(tenant="acme", by="template")
    assert row.key == "stalls" and row.runs == 1 and row.total_tokens > 0
    assert 0 < row.total_tokens < await _whole_run_tokens()  # the first call, not the answer it never gave
    assert charged in (-1, row.total_tokens)
