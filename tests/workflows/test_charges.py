"""A workflow that fails part way still pays for the steps it finished (``details["usage"]``), which the
cost middleware then charges like the partial usage of any failed run."""

from __future__ import annotations

import asyncio

import pytest

from agent_runtime.accounting import error_usage
from agent_runtime.errors import RunTimeoutError
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.workflows import register_workflow_spec
from tests.workflows.conftest import ctx


async def slow_tool(text: str) -> str:
    """A tool slower than its step's timeout."""
    await asyncio.sleep(5)
    return text


async def test_a_failed_workflow_carries_the_usage_of_its_finished_steps(executor: AgentExecutor) -> None:
    executor.factory.register_tool(slow_tool)
    executor.factory.register_template({"name": "slow", "tools": ["slow_tool"]})
    register_workflow_spec(
        executor.factory,
        {
            "name": "stalls",
            "steps": [
                {"name": "draft", "template": "writer"},
                {"name": "post", "template": "slow", "timeout_s": 0.3, "input": 'use slow_tool {"text": "x"}'},
            ],
        },
    )
    draft = await executor.execute_async(ctx("a haiku about spring", "writer"))
    with pytest.raises(RunTimeoutError, match="'post'") as failed:
        await executor.execute_async(ctx("a haiku about spring", "stalls"))
    usage = error_usage(failed.value)
    assert usage.total_tokens == draft.usage.total_tokens > 0  # the finished step, as the cost middleware reads it
    assert failed.value.details["finished_steps"] == 1 and failed.value.details["step"] == "post"
