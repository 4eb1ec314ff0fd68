from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import AgentRuntimeError, RunTimeoutError, TemplateConfigError
from agent_runtime.models.offline import OfflineChatModel
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.settings import Settings
from agent_runtime.types import AgentResult, StreamEvent
from agent_runtime.workflows import RESEARCH_REPORT, register_workflow_spec
from agent_runtime.workflows.spec import render_input
from tests.helpers import FlakyModel, ProviderRateLimited, resolver_for
from tests.workflows.conftest import ctx

STEPS = ["search", "analyze", "write"]


def _check_three_steps(result: AgentResult) -> None:
    steps = result.metadata["steps"]
    assert [s["step"] for s in steps] == STEPS
    assert [s["template"] for s in steps] == ["searcher", "analyst", "writer"]
    assert "redis.md" in steps[0]["output"]  # the searcher really searched the bundled documents
    assert result.output == steps[-1]["output"] and result.output.startswith("Here is a short piece")
    assert [c.name for c in result.tool_calls] == ["search"]
    total = sum(s["usage"]["total_tokens"] for s in steps)
    assert total == result.usage.total_tokens > 0
    assert sum(s["usage"]["cost_usd"] for s in steps) == pytest.approx(result.usage.cost_usd, rel=1e-9)
    assert set(result.metadata["templates"]) == {"searcher", "analyst", "writer"}
    assert result.status == "completed"


async def test_three_step_workflow_async(executor: AgentExecutor) -> None:
    _check_three_steps(await executor.execute_async(ctx("redis connection pool", "research_report")))


async def test_three_step_workflow_with_retry_and_session(executor: AgentExecutor) -> None:
    context = ctx("redis connection pool", "research_report", session_id="ses_flow", metadata={"create_session": True})
    first = await executor.execute_with_retry(context)
    _check_three_steps(first)
    second = await executor.execute_with_retry(context.model_copy(update={"run_id": "run_second"}))
    _check_three_steps(second)  # only this run's steps, although the session's checkpoint holds both runs
    assert first.session_id == second.session_id == "ses_flow"


def test_three_step_workflow_sync(executor: AgentExecutor) -> None:
    _check_three_steps(executor.execute(ctx("redis connection pool", "research_report")))


async def test_three_step_workflow_streams_each_step(executor: AgentExecutor) -> None:
    events: list[StreamEvent] = [
        e async for e in executor.execute_stream(ctx("redis connection pool", "research_report"))
    ]
    final = events[-1]
    assert final.type == "final"
    _check_three_steps(AgentResult.model_validate(final.data))
    order = [e.step for e in events[:-1]]
    assert None not in order
    assert list(dict.fromkeys(order)) == STEPS  # every event names its step, steps arrive in order
    assert [e.type for e in events if e.step == "search"][:2] == ["tool_call", "tool_result"]
    text = "".join(e.text for e in events if e.type == "token" and e.step == "write")
    assert text == final.data["output"]


async def test_workflow_does_what_its_agents_do_by_hand(executor: AgentExecutor) -> None:
    """The same model and tool calls, outputs and usage as the three templates run one after the other with
    the mapped inputs (what the overhead benchmark compares with); callbacks see each model call once."""
    flow = await executor.execute_async(ctx("redis connection pool", "research_report"))
    outputs: dict[str, str] = {}
    by_hand = []
    for step in RESEARCH_REPORT.steps:
        text = render_input(step.input or "{input}", "redis connection pool", outputs)
        result = await executor.execute_async(ctx(text, step.template))
        outputs[step.name] = result.output
        by_hand.append(result)
    steps = flow.metadata["steps"]
    assert [s["output"] for s in steps] == [r.output for r in by_hand]
    assert [s["usage"] for s in steps] == [r.usage.model_dump() for r in by_hand]
    assert [s["tool_calls"] for s in steps] == [len(r.tool_calls) for r in by_hand]
    assert flow.messages == [m for r in by_hand for m in r.messages]
    for key in ("llm_calls", "tool_calls", "total_tokens"):
        assert flow.metadata["callbacks"][key] == sum(r.metadata["callbacks"][key] for r in by_hand), key


def _branching(factory: AgentFactory) -> None:
    register_workflow_spec(
        factory,
        {
            "name": "triage",
            "steps": [
                {
                    "name": "classify",
                    "template": "analyst",
                    "branch": {
                        "rules": [{"regex": r"= \d+", "goto": "math"}, {"contains": "haiku", "goto": "poem"}],
                        "default": "end",
                    },
                },
                {"name": "math", "template": "writer", "input": "Write a note about {steps.classify}"},
                {"name": "poem", "template": "writer", "input": "a haiku about {input}"},
            ],
        },
    )


@pytest.mark.parametrize(
    ("text", "taken"),
    [("what is 6*7?", ["classify", "math"]), ("hello there, haiku", ["classify", "poem"]), ("hi", ["classify"])],
)
async def test_branch_is_taken_by_output(executor: AgentExecutor, text: str, taken: list[str]) -> None:
    _branching(executor.factory)
    result = await executor.execute_async(ctx(text, "triage"))
    assert [s["step"] for s in result.metadata["steps"]] == taken
    if "math" in taken:
        assert "6*7 = 42" in result.output


async def test_fan_out_costs_add_up(executor: AgentExecutor) -> None:
    register_workflow_spec(
        executor.factory,
        {
            "name": "fan",
            "steps": [
                {"name": "plan", "template": "writer"},
                {"name": "numbers", "template": "analyst", "after": ["plan"], "input": "what is 12*12+1?"},
                {"name": "facts", "template": "searcher", "after": ["plan"], "input": "search for kafka partitions"},
                {"name": "poem", "template": "writer", "after": ["plan"], "input": "two haikus about {input}"},
                {
                    "name": "merge",
                    "template": "writer",
                    "after": ["numbers", "facts", "poem"],
                    "input": "Write a summary of: {steps.numbers} {steps.facts} {steps.poem}",
                },
            ],
        },
    )
    result = await executor.execute_async(ctx("the sea", "fan"))
    steps = {s["step"]: s for s in result.metadata["steps"]}
    assert next(iter(steps)) == "plan" and list(steps)[-1] == "merge"
    assert {"numbers", "facts", "poem"} == set(list(steps)[1:4])  # the fan-out ran in one superstep
    assert "145" in steps["numbers"]["output"] and "kafka" in steps["facts"]["output"].lower()
    fan = [steps[name]["usage"] for name in ("numbers", "facts", "poem")]
    assert all(u["cost_usd"] > 0 for u in fan)
    assert sum(s["usage"]["cost_usd"] for s in steps.values()) == pytest.approx(result.usage.cost_usd, rel=1e-9)
    assert sum(s["usage"]["total_tokens"] for s in steps.values()) == result.usage.total_tokens
    by_template = result.metadata["templates"]
    assert by_template["writer"]["total_tokens"] == sum(
        steps[n]["usage"]["total_tokens"] for n in ("plan", "poem", "merge")
    )


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"name": "a", "template": "writer"}, {"name": "b", "template": "ghost"}], r"step 'b': unknown template"),
        ([{"name": "a", "template": "writer", "after": ["zz"]}], r"step 'a': runs after unknown step 'zz'"),
        (
            [{"name": "a", "template": "writer", "after": ["b"]}, {"name": "b", "template": "writer", "after": ["a"]}],
            r"step '[ab]': is part of a cycle: (a -> b -> a|b -> a -> b)",
        ),
        (
            [
                {"name": "a", "template": "writer"},
                {"name": "b", "template": "writer", "after": ["a"]},
                {"name": "c", "template": "writer", "after": ["a", "b"]},
            ],
            r"step 'c': missing input mapping",
        ),
        (
            [
                {"name": "a", "template": "writer", "branch": {"rules": [{"contains": "x", "goto": "b"}]}},
                {"name": "b", "template": "writer"},
                {"name": "c", "template": "writer", "after": ["a"], "input": "{input}"},
            ],
            r"step 'c': runs after 'a', which branches",
        ),
        (
            [
                {"name": "a", "template": "writer", "branch": {"rules": [{"contains": "x", "goto": "b"}]}},
                {"name": "b", "template": "writer"},
                {"name": "c", "template": "writer", "input": "{steps.a} {steps.b}", "after": ["b"]},
                {"name": "d", "template": "writer", "input": "{steps.b}", "after": ["a"]},
            ],
            r"step 'd': runs after 'a', which branches",
        ),
        (
            [{"name": "a", "template": "writer", "input": "{steps.b}"}, {"name": "b", "template": "writer"}],
            r"step 'a': missing input mapping: 'b' does not always run before it",
        ),
        ([{"name": "a", "template": "writer"}, {"name": "a", "template": "analyst"}], r"step 'a': is declared twice"),
        ([{"name": "a", "template": "writer", "timeout_s": -1}], r"step 'a'\.timeout_s"),
    ],
)
def test_invalid_declarations_name_the_step(
    factory: AgentFactory, steps: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(TemplateConfigError, match=message):
        register_workflow_spec(factory, {"name": "bad", "steps": steps})
    assert "bad" not in factory.workflows  # nothing half-registered


def test_workflows_load_from_template_files(tmp_path: Path) -> None:
    (tmp_path / "flows.yaml").write_text(
        "templates:\n  - {name: shouter, system_prompt: Shout.}\n"
        "workflows:\n  - name: echo\n    steps:\n      - {name: one, template: shouter}\n"
        "      - {name: two, template: writer, input: 'a poem about {steps.one}'}\n"
    )
    factory = AgentFactory(Settings(templates_dir=tmp_path))
    assert factory.get_template("echo").workflow == "echo" and "shouter" in [t.name for t in factory.list_templates()]
    result = AgentExecutor(factory).execute(ctx("hello", "echo"))
    assert [s["step"] for s in result.metadata["steps"]] == ["one", "two"]
    (tmp_path / "broken.yaml").write_text("workflows:\n  - name: bad\n    steps: [{name: x, template: nope}]\n")
    with pytest.raises(TemplateConfigError, match="step 'x': unknown template 'nope'"):
        AgentFactory(Settings(templates_dir=tmp_path))


async def test_step_retries_retriable_errors() -> None:
    model = FlakyModel(failures=1, error=lambda: ProviderRateLimited("busy"))
    factory = AgentFactory(model_resolver=resolver_for(model))
    register_workflow_spec(factory, {"name": "one", "steps": [{"name": "only", "template": "writer", "retries": 2}]})
    result = await AgentExecutor(factory).execute_async(ctx("a haiku about rain", "one"))
    assert model.calls == 2 and result.metadata["steps"][0]["step"] == "only"


@pytest.mark.parametrize(
    ("error", "failures", "calls"),
    [
        (lambda: ProviderRateLimited("busy"), 10, 3),  # retriable: 1 + 2 retries, then the run fails
        (lambda: ValueError("bad request"), 1, 1),  # not retriable: never retried
    ],
)
async def test_step_retries_stop(error: Callable[[], BaseException], failures: int, calls: int) -> None:
    model = FlakyModel(failures=failures, error=error)
    factory = AgentFactory(model_resolver=resolver_for(model))
    register_workflow_spec(factory, {"name": "one", "steps": [{"name": "only", "template": "writer", "retries": 2}]})
    with pytest.raises(AgentRuntimeError) as failed:
        await AgentExecutor(factory).execute_async(ctx("a haiku about rain", "one"))
    assert model.calls == calls and failed.value.details.get("step") == "only"


async def test_step_timeout_names_the_step() -> None:
    factory = AgentFactory(model_resolver=resolver_for(OfflineChatModel(token_latency_ms=100)))
    register_workflow_spec(
        factory, {"name": "slow", "steps": [{"name": "lag", "template": "writer", "timeout_s": 0.05}]}
    )
    with pytest.raises(RunTimeoutError, match="step 'lag'") as info:
        await AgentExecutor(factory).execute_async(ctx("a long poem about the sea", "slow"))
    assert info.value.details["step"] == "lag"
