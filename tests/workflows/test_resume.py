"""Resuming a workflow that paused in a step: later steps still read the workflow's input, and a pause
beside parallel steps charges and reports each model call exactly once, in every execution mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.types import AgentResult
from agent_runtime.workflows import register_workflow_spec
from tests.workflows.conftest import PRINCIPAL, ctx, register_gated


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def _resume(executor: AgentExecutor, resume_id: str, mode: str) -> AgentResult:
    if mode == "async":
        return await executor.resume_async(resume_id, "approve", principal=PRINCIPAL)
    events = [e async for e in executor.resume_stream(resume_id, "approve", principal=PRINCIPAL)]
    assert events[-1].type == "final"
    return AgentResult.model_validate(events[-1].data)


def _register(executor: AgentExecutor, calls: Path, name: str, steps: list[dict[str, object]]) -> None:
    """``name`` with ``post`` gated, and ``<name>_free`` with the same steps and nothing gated."""
    factory = executor.factory
    register_gated(factory, calls)
    factory.register_template({"name": "free", "tools": ["publish"]})
    register_workflow_spec(factory, {"name": name, "steps": steps})
    free = [{**s, "template": "free"} if s["template"] == "gated" else s for s in steps]
    register_workflow_spec(factory, {"name": f"{name}_free", "steps": free})


@pytest.mark.parametrize("mode", ["async", "stream"])
async def test_a_step_after_a_resumed_step_reads_the_workflow_input(
    executor: AgentExecutor, tmp_path: Path, mode: str
) -> None:
    """The paused step's own input message must not become the workflow's input for the steps after it."""
    _register(
        executor,
        tmp_path / "calls.txt",
        "seq",
        [
            {"name": "post", "template": "gated", "input": 'use publish {"text": "notes"}'},
            {"name": "final", "template": "writer", "input": "a haiku about {input}"},
        ],
    )
    paused = await executor.execute_async(ctx("autumn leaves", "seq"))
    assert paused.status == "interrupted"
    done = await _resume(executor, paused.run_id, mode)
    unpaused = await executor.execute_async(ctx("autumn leaves", "seq_free"))
    assert done.output == unpaused.output and "autumn leaves" in done.output.lower()
    assert [s["step"] for s in done.metadata["steps"]] == ["post", "final"]
    assert all(m["role"] != "user" for m in done.messages)  # no step input leaks into the run's messages


@pytest.mark.parametrize("mode", ["async", "stream"])
async def test_a_pause_beside_parallel_steps_is_charged_once(
    executor: AgentExecutor, tmp_path: Path, mode: str
) -> None:
    calls = tmp_path / "calls.txt"
    _register(
        executor,
        calls,
        "fan",
        [
            {"name": "plan", "template": "writer"},
            {"name": "side", "template": "analyst", "after": ["plan"], "input": "what is 12*12+1?"},
            {"name": "post", "template": "gated", "after": ["plan"], "input": 'use publish {"text": "notes"}'},
        ],
    )
    paused = await executor.execute_async(ctx("a haiku about spring", "fan"))
    assert paused.status == "interrupted"
    assert {s["step"]: s.get("status", "completed") for s in paused.metadata["steps"]} == {
        "plan": "completed",
        "side": "completed",
        "post": "interrupted",
    }
    done = await _resume(executor, paused.run_id, mode)
    assert done.status == "completed" and _calls(calls) == ["notes"]
    assert [s["step"] for s in done.metadata["steps"]] == ["post"]  # side was the paused run's
    assert done.output == "The publish tool returned: published notes"
    assert [c.name for c in done.tool_calls] == ["publish"]
    assert not any("145" in str(m["content"]) for m in done.messages)  # side's answer was reported already
    assert done.metadata["steps"][0]["usage"]["total_tokens"] == done.usage.total_tokens > 0

    unpaused = await executor.execute_async(ctx("a haiku about spring", "fan_free"))
    assert paused.usage.total_tokens + done.usage.total_tokens == unpaused.usage.total_tokens
    assert paused.usage.cost_usd + done.usage.cost_usd == pytest.approx(unpaused.usage.cost_usd)


async def test_a_streamed_resume_pays_what_an_awaited_resume_pays(executor: AgentExecutor, tmp_path: Path) -> None:
    """A resumed stream shows the paused call again (LangChain re-emits it); it was charged by the run
    that paused, so it is neither charged nor listed twice."""
    calls = tmp_path / "calls.txt"
    register_gated(executor.factory, calls)
    results = {}
    for mode in ("async", "stream"):
        paused = await executor.execute_async(ctx('use publish {"text": "notes"}', "gated"))
        assert paused.status == "interrupted"
        results[mode] = await _resume(executor, paused.run_id, mode)
    assert _calls(calls) == ["notes", "notes"]
    awaited, streamed = results["async"], results["stream"]
    assert streamed.usage.total_tokens == awaited.usage.total_tokens > 0
    assert [c.name for c in streamed.tool_calls] == [c.name for c in awaited.tool_calls] == ["publish"]
    assert len(streamed.messages) == len(awaited.messages)
