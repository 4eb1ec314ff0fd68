"""Declarations the workflow compiler must refuse (nested workflows, workflows replacing templates, join: any
on steps that can both run, placeholder typos), and the registry re-entry that used to deadlock."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.agents._registry import Registry
from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import ConfigurationError, NotFoundError, TemplateConfigError
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.settings import Settings
from agent_runtime.workflows import plan_workflow, register_workflow_spec
from agent_runtime.workflows.spec import WorkflowSpec, placeholders, render_input, unknown_placeholders
from tests.workflows.conftest import ctx


def _in_thread(call: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Run ``call`` in a daemon thread so that a deadlock fails the test instead of hanging the suite."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "deadlock"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# -- the registry ---------------------------------------------------------------------------------------


def test_registry_factory_may_read_the_registry_and_runs_once() -> None:
    registry: Registry[str] = Registry("workflow")
    calls: list[str] = []

    def build(name: str, needs: str | None) -> Callable[[], str]:
        def factory() -> str:
            calls.append(name)
            return name + (":" + registry.get(needs) if needs else "")

        return factory

    registry.register("inner", factory=build("inner", None))
    registry.register("outer", factory=build("outer", "inner"))
    assert _in_thread(lambda: registry.get("outer")) == "outer:inner"
    assert registry.get("outer") == "outer:inner" and calls == ["outer", "inner"]


def test_registry_factory_requesting_its_own_name_raises() -> None:
    registry: Registry[str] = Registry("workflow")
    registry.register("loop", factory=lambda: registry.get("loop"))
    with pytest.raises(ConfigurationError, match="workflow 'loop' is requested again while it is being built"):
        _in_thread(lambda: registry.get("loop"))
    with pytest.raises(ConfigurationError, match="requested again"):  # nothing half-built is kept
        registry.get("loop")
    registry.register("loop", "fixed", replace=True)
    assert registry.get("loop") == "fixed"


def test_registry_cycle_across_threads_raises_instead_of_deadlocking() -> None:
    registry: Registry[str] = Registry("workflow")
    started = {"x": threading.Event(), "y": threading.Event()}

    def factory(name: str, other: str) -> Callable[[], str]:
        def build() -> str:
            started[name].set()
            started[other].wait(5)
            return registry.get(other)

        return build

    registry.register("x", factory=factory("x", "y"))
    registry.register("y", factory=factory("y", "x"))
    errors: list[BaseException] = []

    def get(name: str) -> None:
        try:
            registry.get(name)
        except ConfigurationError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=get, args=(n,), daemon=True) for n in ("x", "y")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert errors and all("requested again" in str(e) for e in errors)


def test_registry_concurrent_gets_build_once() -> None:
    registry: Registry[object] = Registry("tool")
    calls: list[int] = []
    gate = threading.Event()

    def slow() -> object:
        calls.append(1)
        gate.wait(5)
        return object()

    registry.register("index", factory=slow)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(registry.get("index"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1 and len(results) == 4 and len({id(r) for r in results}) == 1


def test_registry_replaced_while_building_returns_the_new_item() -> None:
    registry: Registry[str] = Registry("workflow")

    def old() -> str:
        registry.register("flow", factory=lambda: "new", replace=True)  # replaced while this one builds
        return "old"

    registry.register("flow", factory=old)
    assert registry.get("flow") == "new" and registry.get("flow") == "new"
    registry.register("gone", factory=lambda: registry.unregister("gone") or "built")
    with pytest.raises(NotFoundError):
        registry.get("gone")


# -- nested workflows and workflows named like templates ---------------------------------------------------


def test_step_running_a_workflow_is_rejected_at_registration(factory: AgentFactory) -> None:
    steps = [{"name": "first", "template": "research_report"}, {"name": "second", "template": "writer"}]
    with pytest.raises(TemplateConfigError, match=r"step 'first': runs workflow 'research_report'.*nested workflows"):
        register_workflow_spec(factory, {"name": "outer", "steps": steps})
    assert "outer" not in factory.workflows


def test_nested_workflow_in_a_template_file_fails_fast(tmp_path: Path) -> None:
    """The audit's hang: a file's workflow whose step is ``research_report``."""
    (tmp_path / "t.yaml").write_text(
        "workflows:\n  - name: outer\n    steps:\n      - {name: first, template: research_report}\n"
        "      - {name: second, template: writer}\n"
    )
    with pytest.raises(TemplateConfigError, match="step 'first': runs workflow 'research_report'"):
        _in_thread(lambda: AgentFactory(Settings(templates_dir=tmp_path)))


def test_template_turned_workflow_after_registration_fails_at_compile(factory: AgentFactory) -> None:
    factory.register_template({"name": "draft", "system_prompt": "Draft it."})
    register_workflow_spec(factory, {"name": "w", "steps": [{"name": "a", "template": "draft"}]})
    factory.register_template({"name": "draft", "workflow": "research_report"}, replace=True)
    executor = AgentExecutor(factory)
    with pytest.raises(TemplateConfigError, match=r"step 'a': runs workflow 'research_report'.*list its steps"):
        _in_thread(lambda: executor.execute(ctx("hello", "w")))


@pytest.mark.parametrize("replace", [False, True])
def test_workflow_cannot_replace_a_plain_template(factory: AgentFactory, replace: bool) -> None:
    spec = {"name": "writer", "steps": [{"name": "a", "template": "analyst"}]}
    with pytest.raises(TemplateConfigError, match="template named 'writer' exists and is not a workflow"):
        register_workflow_spec(factory, spec, replace=replace)
    assert factory.get_template("writer").workflow is None and "writer" not in factory.workflows
    register_workflow_spec(factory, {**spec, "name": "research_report"}, replace=True)  # a workflow: fine


def test_cycle_across_workflows_is_impossible(factory: AgentFactory, tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "workflows:\n  - {name: loopa, steps: [{name: a, template: writer}]}\n"
        "  - {name: writer, steps: [{name: b, template: loopa}]}\n"
    )
    with pytest.raises(TemplateConfigError, match="'writer' exists and is not a workflow"):
        AgentFactory(Settings(templates_dir=tmp_path))
    register_workflow_spec(factory, {"name": "loopa", "steps": [{"name": "a", "template": "writer"}]})
    register_workflow_spec(factory, {"name": "loopb", "steps": [{"name": "b", "template": "analyst"}]})
    with pytest.raises(TemplateConfigError, match="step 'a': runs workflow 'loopb'"):
        register_workflow_spec(factory, {"name": "loopa", "steps": [{"name": "a", "template": "loopb"}]}, replace=True)
    with pytest.raises(TemplateConfigError, match="step 'b': runs workflow 'loopa'"):
        register_workflow_spec(factory, {"name": "loopb", "steps": [{"name": "b", "template": "loopa"}]}, replace=True)


# -- join: any ------------------------------------------------------------------------------------------

_FAN = [
    {"name": "a", "template": "writer"},
    {"name": "b", "template": "writer", "after": ["a"]},
    {"name": "c1", "template": "writer", "after": ["a"]},
    {"name": "c2", "template": "writer", "after": ["c1"]},
]


def _branches(final: dict[str, Any]) -> list[dict[str, Any]]:
    rule = {"rules": [{"regex": r"= \d+", "goto": "math"}], "default": "poem"}
    return [
        {"name": "classify", "template": "analyst", "branch": rule},
        {"name": "math", "template": "writer", "input": "Write a note about {steps.classify}"},
        {"name": "poem", "template": "writer", "input": "a haiku about {input}"},
        {"name": "polish", "template": "writer", "after": ["poem"]},
        {"name": "final", "template": "writer", **final},
    ]


async def test_join_any_on_steps_that_can_both_run_is_rejected(executor: AgentExecutor) -> None:
    """The audit's case: d ran twice (once after b, once after c2), and e after it twice too."""
    tail = [{"name": "e", "template": "writer", "after": ["d"]}]
    d = {"name": "d", "template": "writer", "after": ["b", "c2"], "input": "{steps.a}"}
    with pytest.raises(TemplateConfigError, match=r"step 'd': join: any .* 'b' and 'c2' can both run: use join: all"):
        register_workflow_spec(executor.factory, {"name": "ja", "steps": [*_FAN, {**d, "join": "any"}, *tail]})
    register_workflow_spec(executor.factory, {"name": "ja", "steps": [*_FAN, d, *tail]})
    result = await executor.execute_async(ctx("hello", "ja"))
    assert sorted(s["step"] for s in result.metadata["steps"]) == ["a", "b", "c1", "c2", "d", "e"]


@pytest.mark.parametrize(
    ("text", "taken"), [("what is 6*7?", ["classify", "math"]), ("hi", ["classify", "poem", "polish"])]
)
async def test_join_any_on_branch_alternatives_runs_once(executor: AgentExecutor, text: str, taken: list[str]) -> None:
    final = {"after": ["math", "polish"], "join": "any", "input": "{steps.classify}"}
    register_workflow_spec(executor.factory, {"name": "alt", "steps": _branches(final)})
    result = await executor.execute_async(ctx(text, "alt"))
    assert [s["step"] for s in result.metadata["steps"]] == [*taken, "final"]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            _branches({"after": ["math", "polish"], "input": "{steps.classify}"}),
            r"step 'final': waits for all of \['math', 'polish'\], but the branch of 'classify' runs only one",
        ),
        (
            [
                {"name": "p", "template": "writer"},
                {
                    "name": "x",
                    "template": "writer",
                    "after": ["p"],
                    "branch": {"rules": [{"contains": "a", "goto": "t"}]},
                },
                {
                    "name": "y",
                    "template": "writer",
                    "after": ["p"],
                    "branch": {"rules": [{"contains": "b", "goto": "t"}]},
                },
                {"name": "t", "template": "writer", "input": "{input}"},
            ],
            r"step 't': is a branch target of 'x' and 'y', which can both run",
        ),
        (
            [
                *_branches({"after": ["polish", "tail"], "join": "any", "input": "{input}"}),
                {"name": "tail", "template": "writer", "after": ["poem"]},
            ],
            r"step 'final': join: any .* 'polish' and 'tail' can both run",
        ),
    ],
)
def test_impossible_joins_name_the_step(factory: AgentFactory, steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(TemplateConfigError, match=message):
        register_workflow_spec(factory, {"name": "bad", "steps": steps})


def test_alternative_branchers_may_share_a_target(factory: AgentFactory) -> None:
    """x and y are alternatives of p's branch, so t (the target of both) runs at most once."""
    steps = [
        {"name": "p", "template": "writer", "branch": {"rules": [{"contains": "a", "goto": "x"}], "default": "y"}},
        {"name": "x", "template": "writer", "branch": {"rules": [{"contains": "a", "goto": "t"}]}},
        {"name": "y", "template": "writer", "branch": {"rules": [{"contains": "b", "goto": "t"}]}},
        {"name": "t", "template": "writer", "input": "{steps.p}"},
    ]
    assert plan_workflow(WorkflowSpec.parse({"name": "ok", "steps": steps}), factory).upstream["t"] == ["x", "y"]


def test_documented_example_registers(factory: AgentFactory) -> None:
    """The ``support`` example of ``workflows/defaults.py``'s docstring."""
    factory.register_template({"name": "triage", "system_prompt": "Classify the request."})
    register_workflow_spec(
        factory,
        {
            "name": "support",
            "steps": [
                {
                    "name": "classify",
                    "template": "triage",
                    "branch": {"rules": [{"contains": "refund", "goto": "refund"}], "default": "answer"},
                },
                {"name": "refund", "template": "analyst", "input": "Refund request: {input}"},
                {"name": "answer", "template": "writer", "input": "{input}"},
            ],
        },
    )


# -- placeholders ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("typo", ["{stepz.a}", "{inptu}", "{ input }", "{steps.A}", "{steps.}"])
def test_unknown_placeholder_names_the_step(factory: AgentFactory, typo: str) -> None:
    steps = [{"name": "a", "template": "writer"}, {"name": "b", "template": "writer", "input": f"{{steps.a}} {typo}"}]
    with pytest.raises(TemplateConfigError, match=r"step 'b'\.input: .*unknown placeholder " + re.escape(repr(typo))):
        register_workflow_spec(factory, {"name": "typo", "steps": steps})
    assert "typo" not in factory.workflows


def test_literal_braces() -> None:
    text = 'Answer as JSON {"topic": "{input}"}; keep {{input}} and {{steps.a}} as is. {steps.a}'
    assert unknown_placeholders(text) == [] and placeholders(text) == ["a"]
    rendered = render_input(text, "rain {steps.a}", {"a": "A {input}"})
    assert rendered == 'Answer as JSON {"topic": "rain {steps.a}"}; keep {input} and {steps.a} as is. A {input}'


async def test_escaped_braces_reach_the_model(executor: AgentExecutor) -> None:
    steps = [{"name": "a", "template": "writer", "input": "a haiku about {{rain}} and {input}"}]
    register_workflow_spec(executor.factory, {"name": "lit", "steps": steps})
    result = await executor.execute_async(ctx("snow", "lit"))
    assert "{rain} and snow" in result.output and "{{" not in result.output  # the offline model echoes its topic


@pytest.mark.parametrize(("text", "branch"), [("what is 6*7?", "math"), ("hi", "polish")])
async def test_after_alternatives_previous_reads_the_branch_that_ran(
    executor: AgentExecutor, text: str, branch: str
) -> None:
    """Issue 20.9: the merge step after `join: any` could not read the output of the branch that ran.
    Its prompt is the branch's answer: it costs that many more input tokens than the bare prefix."""
    tokens = {}
    for name, mapping in (("bare", "Merge:"), ("merge", "Merge: {previous}")):
        final = {"after": ["math", "polish"], "join": "any", "input": mapping}
        register_workflow_spec(executor.factory, {"name": name, "steps": _branches(final)})
        result = await executor.execute_async(ctx(text, name))
        records = {s["step"]: s for s in result.metadata["steps"]}
        assert list(records)[-1] == "final" and branch in records
        tokens[name] = records["final"]["usage"]["input_tokens"]
    assert tokens["merge"] - tokens["bare"] >= records[branch]["usage"]["output_tokens"] - 1


def test_previous_is_the_upstream_step_that_ran_in_this_run() -> None:
    outputs = {"math": "42", "polish": "an old poem"}  # polish: a session's earlier run
    assert render_input("Merge: {previous}", "q", outputs, ["math"]) == "Merge: 42"
    assert render_input("{previous}|{input}", "q", outputs, []) == "|q"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"name": "a", "template": "writer", "input": "{previous}"}], r"reads \{previous\}, but no step runs before"),
        (
            [*_FAN, {"name": "d", "template": "writer", "after": ["b", "c2"], "input": "{previous}"}],
            r"reads \{previous\}, but all of \['b', 'c2'\] run before it",
        ),
    ],
)
def test_previous_must_name_one_step(executor: AgentExecutor, steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(TemplateConfigError, match=message):
        register_workflow_spec(executor.factory, {"name": "prev", "steps": steps})
