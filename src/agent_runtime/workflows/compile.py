"""Validate a ``WorkflowSpec`` against a factory and compile it to a LangGraph ``StateGraph``.

Validation happens before anything is registered and every error names the step: unknown template or
step, a step that runs another workflow, a cycle, a wiring a branch makes impossible (``join: all`` on
alternatives), a ``join: any`` on steps that can both run (it would run once per dependency), or an
input mapping that reads a step which does not always run first ("missing input mapping").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from agent_runtime._files import config_files
from agent_runtime.agents.templates import AgentTemplate, read_template_data
from agent_runtime.errors import NotFoundError, TemplateConfigError
from agent_runtime.workflows._step import StepRunner, WorkflowState, retriable
from agent_runtime.workflows.approval import template_needs_checkpointer
from agent_runtime.workflows.spec import END_STEP, BranchSpec, StepSpec, WorkflowSpec, placeholders, reads_previous

if TYPE_CHECKING:
    from agent_runtime.agents.catalog import TemplateCatalog

__all__ = ["WorkflowPlan", "compile_workflow", "load_workflows", "plan_workflow", "register_workflow_spec"]


@dataclass(frozen=True)
class WorkflowPlan:
    """The validated wiring: who runs after whom, and each step's resolved input mapping."""

    spec: WorkflowSpec
    upstream: dict[str, list[str]]
    """Steps each step runs after (for a branch target: the steps that branch to it)."""
    branch_targets: dict[str, list[str]]
    """Branch target -> the steps whose branch can pick it."""
    inputs: dict[str, str]
    order: list[str]

    def joins_all(self, step: StepSpec) -> bool:
        return step.join == "all" and step.name not in self.branch_targets


def _fail(spec: WorkflowSpec, step: str, problem: str) -> TemplateConfigError:
    return TemplateConfigError(f"invalid workflow {spec.name!r}: step {step!r}: {problem}", details={"step": step})


def plan_workflow(spec: WorkflowSpec, factory: TemplateCatalog) -> WorkflowPlan:
    """Check ``spec`` against ``factory``'s templates; raise ``TemplateConfigError`` naming the step."""
    known = _step_names(spec)
    branch_targets = _branch_targets(spec, factory, known)
    upstream = {s.name: _upstream(spec, index, s, branch_targets) for index, s in enumerate(spec.steps)}
    _check_upstream(spec, upstream, branch_targets, known)
    plan = WorkflowPlan(spec, upstream, branch_targets, {}, _topological(spec, upstream))
    _plan_inputs(plan, known)
    return plan


def _step_names(spec: WorkflowSpec) -> set[str]:
    names = [s.name for s in spec.steps]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise _fail(spec, name, "is declared twice")
    return set(names)


def _branch_targets(spec: WorkflowSpec, factory: TemplateCatalog, known: set[str]) -> dict[str, list[str]]:
    """Each step's template checked, and branch target -> the steps whose branch can pick it."""
    branch_targets: dict[str, list[str]] = {}
    for step in spec.steps:
        _check_template(spec, step, factory)
        for target in step.branch.targets() if step.branch else ():
            if target != END_STEP and target not in known:
                raise _fail(spec, step.name, f"branch goes to unknown step {target!r}")
            if target == step.name:
                raise _fail(spec, step.name, "branches to itself (cycles are not allowed)")
            if target != END_STEP:
                branch_targets.setdefault(target, []).append(step.name)
    return branch_targets


def _check_upstream(
    spec: WorkflowSpec, upstream: dict[str, list[str]], branch_targets: dict[str, list[str]], known: set[str]
) -> None:
    for step in spec.steps:
        for dep in upstream[step.name]:
            if dep not in known:
                raise _fail(spec, step.name, f"runs after unknown step {dep!r}")
            if spec.step(dep).branch is not None and step.name not in branch_targets:
                raise _fail(spec, step.name, f"runs after {dep!r}, which branches: name it as a branch target")


def _plan_inputs(plan: WorkflowPlan, known: set[str]) -> None:
    """In order: which steps surely ran before each one (and on which branch decisions), so its input
    mapping may only read those; joins are checked on the way."""
    spec, upstream, branch_targets = plan.spec, plan.upstream, plan.branch_targets
    guaranteed: dict[str, set[str]] = {}
    requires: dict[str, frozenset[Decision]] = {}
    for name in plan.order:
        step = spec.step(name)
        deps = upstream[name]
        before = [{dep, *guaranteed[dep]} for dep in deps]
        decisions = [requires[d] | {(d, name)} if name in branch_targets else requires[d] for d in deps]
        if not before:
            guaranteed[name], requires[name] = set(), frozenset()
        elif plan.joins_all(step):
            _check_join(spec, step, deps, requires)
            guaranteed[name], requires[name] = set().union(*before), frozenset().union(*decisions)
        else:
            _check_any(spec, step, deps, requires, plan)
            guaranteed[name], requires[name] = set.intersection(*before), frozenset.intersection(*decisions)
        plan.inputs[name] = _input_mapping(spec, step, deps, guaranteed[name], known, joins_all=plan.joins_all(step))


def _check_template(spec: WorkflowSpec, step: StepSpec, factory: TemplateCatalog) -> None:
    """Also run when the graph is built: a template may have become a workflow since registration, and
    a nested workflow would make the build read the workflow registry from inside its own build."""
    if step.template == spec.name:
        raise _fail(spec, step.name, "runs the workflow itself (cycles are not allowed)")
    try:
        template = factory.get_template(step.template)
    except NotFoundError:
        raise _fail(spec, step.name, f"unknown template {step.template!r}") from None
    if template.workflow is not None:
        raise _fail(
            spec,
            step.name,
            f"runs workflow {template.workflow!r} (template {step.template!r}): nested workflows are not "
            "supported; list its steps instead",
        )


def _upstream(spec: WorkflowSpec, index: int, step: StepSpec, branch_targets: dict[str, list[str]]) -> list[str]:
    sources = branch_targets.get(step.name)
    if sources is not None:
        if step.after is not None and set(step.after) != set(sources):
            raise _fail(spec, step.name, f"is a branch target of {sources}; it cannot also wait for {step.after}")
        return list(sources)
    if step.after is not None:
        if step.name in step.after:
            raise _fail(spec, step.name, "runs after itself (cycles are not allowed)")
        return list(dict.fromkeys(step.after))
    return [] if index == 0 else [spec.steps[index - 1].name]


def _topological(spec: WorkflowSpec, upstream: dict[str, list[str]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise _fail(spec, name, f"is part of a cycle: {' -> '.join(reversed(cycle))}")
        state[name] = 1
        for dep in upstream[name]:
            visit(dep, [*path, name])
        state[name] = 2
        order.append(name)

    for step in spec.steps:
        visit(step.name, [])
    return order


Decision = tuple[str, str]
"""(brancher, target): a branch's pick that a step needs in order to run."""


def _excluded_by(x: frozenset[Decision], y: frozenset[Decision]) -> str | None:
    """The brancher whose single pick rules out x's or y's run (so they never both run), if any."""
    return next((b1 for b1, t1 in x for b2, t2 in y if b1 == b2 and t1 != t2), None)


def _check_join(spec: WorkflowSpec, step: StepSpec, deps: list[str], requires: dict[str, frozenset[Decision]]) -> None:
    for index, x in enumerate(deps):
        for y in deps[index + 1 :]:
            brancher = _excluded_by(requires[x], requires[y])
            if brancher is not None:
                raise _fail(
                    spec,
                    step.name,
                    f"waits for all of {[x, y]}, but the branch of {brancher!r} runs only one: use join: any",
                )


def _check_any(
    spec: WorkflowSpec, step: StepSpec, deps: list[str], requires: dict[str, frozenset[Decision]], plan: WorkflowPlan
) -> None:
    """A step after several steps runs once per one that ran: they must be alternatives of a branch."""
    for index, x in enumerate(deps):
        for y in deps[index + 1 :]:
            if _excluded_by(requires[x], requires[y]) is not None:
                continue
            if step.name in plan.branch_targets:
                raise _fail(
                    spec,
                    step.name,
                    f"is a branch target of {x!r} and {y!r}, which can both run: it would run twice",
                )
            raise _fail(
                spec,
                step.name,
                f"join: any runs it once per dependency that ran, and {x!r} and {y!r} can both run: "
                "use join: all (join: any is for the alternatives of one branch)",
            )


def _input_mapping(
    spec: WorkflowSpec, step: StepSpec, deps: list[str], guaranteed: set[str], known: set[str], *, joins_all: bool
) -> str:
    if step.input is None:
        if not deps:
            return "{input}"
        if len(deps) == 1:
            return "{steps." + deps[0] + "}"
        raise _fail(spec, step.name, f"missing input mapping: it runs after {deps}, so give it an `input`")
    if reads_previous(step.input):
        if not deps:
            raise _fail(spec, step.name, "input mapping reads {previous}, but no step runs before it")
        if len(deps) > 1 and joins_all:
            raise _fail(spec, step.name, f"input mapping reads {{previous}}, but all of {deps} run before it: name one")
    for name in placeholders(step.input):
        if name not in known:
            raise _fail(spec, step.name, f"input mapping reads unknown step {name!r}")
        if name not in guaranteed:
            raise _fail(spec, step.name, f"missing input mapping: {name!r} does not always run before it")
    return step.input


def compile_workflow(spec: WorkflowSpec | dict[str, Any], factory: TemplateCatalog) -> Any:
    """Validate and compile to a LangGraph graph (no checkpointer: the executor binds the session's)."""
    spec = WorkflowSpec.parse(spec)
    plan = plan_workflow(spec, factory)
    graph: StateGraph[WorkflowState] = StateGraph(WorkflowState)
    needs_checkpointer = False
    for step in spec.steps:
        template = factory.get_template(step.template)
        needs = template_needs_checkpointer(factory, template)
        needs_checkpointer |= needs
        runner = StepRunner(
            factory, step, plan.inputs[step.name], needs_checkpointer=needs, upstream=tuple(plan.upstream[step.name])
        )
        retry = (
            RetryPolicy(initial_interval=0.25, max_interval=8.0, max_attempts=step.retries + 1, retry_on=retriable)
            if step.retries
            else None
        )
        graph.add_node(step.name, runner.__call__, retry_policy=retry)
    successors: set[str] = set()
    for step in spec.steps:
        deps = [] if step.name in plan.branch_targets else plan.upstream[step.name]
        if step.name not in plan.branch_targets and not deps:
            graph.add_edge(START, step.name)
        elif plan.joins_all(step) and len(deps) > 1:
            graph.add_edge(deps, step.name)
        else:
            for dep in deps:
                graph.add_edge(dep, step.name)
        successors.update(deps)
        if step.branch is not None:
            path_map: dict[str, str] = {t: END if t == END_STEP else t for t in step.branch.targets()}
            graph.add_conditional_edges(step.name, _router(step.name, step.branch), path_map)  # type: ignore[arg-type]
    for step in spec.steps:
        if step.branch is None and step.name not in successors:
            graph.add_edge(step.name, END)
    compiled = graph.compile(name=spec.name)
    compiled.requires_checkpointer = needs_checkpointer  # type: ignore[attr-defined]
    compiled.step_templates = {s.name: s.template for s in spec.steps}  # type: ignore[attr-defined]
    compiled.step_inputs = dict(plan.inputs)  # type: ignore[attr-defined]  # for the quota bound
    return compiled


def _router(name: str, branch: BranchSpec) -> Callable[[WorkflowState], str]:
    def route(state: WorkflowState) -> str:
        return branch.route((state.get("outputs") or {}).get(name, ""))

    route.__name__ = f"route_{name}"
    return route


def register_workflow_spec(
    factory: TemplateCatalog, spec: WorkflowSpec | dict[str, Any], *, replace: bool = False
) -> WorkflowSpec:
    """Validate, compile and register a declarative workflow, plus a template of the same name that runs
    it (so ``executor.execute_async(AgentContext(template=<workflow name>, ...))`` works like any agent)."""
    spec = WorkflowSpec.parse(spec)
    existing = next((t for t in factory.list_templates() if t.name == spec.name), None)
    if existing is not None and existing.workflow is None:
        raise TemplateConfigError(
            f"workflow {spec.name!r}: a template named {spec.name!r} exists and is not a workflow; "
            "a workflow cannot replace it (choose another name)",
            details={"workflow": spec.name},
        )
    if not replace and (spec.name in factory.workflows or existing is not None):
        raise TemplateConfigError(f"workflow {spec.name!r} is already registered (pass replace=True)")
    plan_workflow(spec, factory)  # reject now; compile on first use (a factory is built often, a graph rarely run)
    factory.register_workflow(spec.name, builder=lambda: compile_workflow(spec, factory), replace=replace)
    factory.register_template(_template_for(spec, factory), replace=replace)
    return spec


def _template_for(spec: WorkflowSpec, factory: TemplateCatalog) -> AgentTemplate:
    """The template of a workflow. ``max_output_tokens`` bounds every step's model calls together, so quota
    reservation (which assumes one call per template without tools) covers the whole workflow."""
    budget = 0
    for step in spec.steps:
        template = factory.get_template(step.template)
        budget += template.max_output_tokens * (2 if template.tools else 1)
    return AgentTemplate(
        name=spec.name,
        description=spec.description or f"Workflow: {' -> '.join(s.name for s in spec.steps)}",
        workflow=spec.name,
        timeout_s=spec.timeout_s,
        max_retries=0,  # steps retry on their own; retrying the whole workflow would repeat finished steps
        max_output_tokens=min(budget, 1_000_000),
        tags=["workflow", *spec.tags],
        metadata={"steps": [s.name for s in spec.steps]},
    )


def load_workflows(factory: TemplateCatalog, path: Path, *, replace: bool = False) -> list[WorkflowSpec]:
    """Register the ``workflows: [...]`` section of a template file (or of every such file in a folder)."""
    registered: list[WorkflowSpec] = []
    for file in config_files(path, "workflow", TemplateConfigError):
        data = read_template_data(file)
        items = data.get("workflows") if isinstance(data, dict) else None
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise TemplateConfigError(f"template file {file}: `workflows` must be a list of mappings")
        registered += [register_workflow_spec(factory, item, replace=replace) for item in items]
    return registered
