"""A run that fails part way is charged for the model calls it already made: the provider billed them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.accounting import error_usage
from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import RunTimeoutError
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal
from tests.monitoring.test_metrics import scrape, value

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
        charged = error_usage(failed.value)
        assert charged.cost_usd > 0  # recording the usage did not reprice the error's own figures
        assert failed.value.details["model"] == "offline"
    else:
        events = [e async for e in runtime.executor.execute_stream(context)]
        assert [e.type for e in events][-1] == "error" and events[-1].data["code"] == "timeout"
        json.dumps(events[-1].model_dump())  # an SSE error event must stay JSON
        charged = None
    (row,) = await runtime.cost_tracker.report(tenant="acme", by="model")
    assert row.key == "offline" and row.cost_usd > 0  # priced by the model that answered
    assert row.runs == 1  # a failed attempt that spent tokens is a run of the ledger, as every attempt is
    assert 0 < row.total_tokens < await _whole_run_tokens()  # the first call, not the answer it never gave
    assert charged is None or charged.total_tokens == row.total_tokens
    samples = scrape(runtime.metrics)  # Prometheus sees the same spend
    tokens = value(samples, "agent_runtime_tokens_total", model="offline", kind="input")
    tokens += value(samples, "agent_runtime_tokens_total", model="offline", kind="output")
    assert tokens == row.total_tokens


async def test_a_retry_in_a_session_pays_each_model_call_once(runtime: Runtime) -> None:
    """The first attempt's model call stays in the session's checkpoint after the same anchor: the second
    attempt must not charge it (nor list it) again."""
    calls = {"n": 0}

    async def flaky_tool(text: str) -> str:
        """Publish the text."""
        calls["n"] += 1
        if calls["n"] == 1:
            await asyncio.sleep(5)  # the first attempt times out here, after its first model call
        return text

    runtime.factory.register_tool(flaky_tool)
    runtime.factory.register_template({"name": "flaky", "tools": ["flaky_tool"]})
    context = AgentContext(
        input='use flaky_tool {"text": "x"}',
        template="flaky",
        timeout_s=0.5,
        principal=ACME,
        session_id="ses_retry",
        metadata={"create_session": True},
    )
    result = await runtime.executor.execute_with_retry(context, max_retries=1)
    assert result.attempts == 2 and calls["n"] == 2
    assert len([m for m in result.messages if m.get("tool_calls")]) == 1  # only this attempt's call
    (row,) = await runtime.cost_tracker.report(tenant="acme", by="model")
    assert row.runs == 2  # two attempts, each billed
    first_attempt = row.total_tokens - result.usage.total_tokens
    assert 0 < first_attempt < result.usage.total_tokens  # the timed-out call, charged once


async def test_a_failed_turn_leaves_no_half_in_its_session(runtime: Runtime) -> None:
    """The failed run's model call asked for a tool that never answered: kept in the session, that call
    without a result would make providers refuse the next turn."""
    session = {"session_id": "ses_half", "principal": ACME}
    first = await runtime.executor.execute_async(
        AgentContext(input="a haiku about rain", template="stalls", metadata={"create_session": True}, **session)
    )
    with pytest.raises(RunTimeoutError):
        await runtime.executor.execute_async(AgentContext(input=ASK, template="stalls", timeout_s=0.5, **session))
    history = await runtime.sessions.get_messages("ses_half", tenant="acme")
    assert [m["role"] for m in history] == ["user", "assistant"] and history[1]["content"] == first.output
    after = await runtime.executor.execute_async(AgentContext(input="and about snow?", template="stalls", **session))
    history = await runtime.sessions.get_messages("ses_half", tenant="acme")
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[-1]["content"] == after.output
    assert (await runtime.sessions.get_session("ses_half", tenant="acme")).message_count == 4


async def test_an_abandoned_stream_leaves_no_half_in_its_session(runtime: Runtime) -> None:
    session = {"session_id": "ses_gone", "principal": ACME}
    first = await runtime.executor.execute_async(
        AgentContext(input="a haiku about rain", template="stalls", metadata={"create_session": True}, **session)
    )
    stream = runtime.executor.execute_stream(AgentContext(input=ASK, template="stalls", **session))
    async for event in stream:
        if event.type == "tool_call":  # the model asked for the slow tool: the client goes away
            break
    await stream.aclose()
    history = await runtime.sessions.get_messages("ses_gone", tenant="acme")
    assert [m["role"] for m in history] == ["user", "assistant"] and history[1]["content"] == first.output
    assert (await runtime.sessions.get_session("ses_gone", tenant="acme")).message_count == 2
    (row,) = await runtime.cost_tracker.report(tenant="acme", by="model")
    assert row.total_tokens > first.usage.total_tokens  # the abandoned call is still charged
