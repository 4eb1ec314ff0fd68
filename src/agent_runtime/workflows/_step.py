"""The workflow graph's state and the node that runs one step's agent.

The state has ``messages`` (so the executor runs a workflow like an agent: the steps' AI and tool
messages land there, each priced by the model that answered), plus ``outputs`` (step -> answer, for
input mappings and branches) and ``steps`` (one usage record per step run, for cost attribution).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from langgraph.graph.message import add_messages

from agent_runtime.errors import RunTimeoutError
from agent_runtime.monitoring.pricing import PriceTable
from agent_runtime.orchestration._errors import map_error
from agent_runtime.orchestration._results import summarize_messages
from agent_runtime.workflows._charges import CHARGED_KEY, FINISHED_KEY, PRICES_KEY, strip_charged
from agent_runtime.workflows.spec import StepSpec, render_input

if TYPE_CHECKING:
    from agent_runtime.agents.catalog import TemplateCatalog

__all__ = ["StepRunner", "WorkflowState", "retriable", "workflow_input"]


def _merge(old: dict[str, str] | None, new: dict[str, str] | None) -> dict[str, str]:
    return {**(old or {}), **(new or {})}


_MAX_STEP_RECORDS = 512
"""Bound for a graph driven without the executor (no reset): the latest records are kept."""


def _steps_of_run(old: list[dict[str, Any]] | None, new: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if not new:
        return list(old or [])
    kept = [] if any(r.get("reset") for r in new) else list(old or [])
    kept += [r for r in new if not r.get("reset")]
    return kept[-_MAX_STEP_RECORDS:]


class WorkflowState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    outputs: Annotated[dict[str, str], _merge]
    steps: Annotated[list[dict[str, Any]], _steps_of_run]


def workflow_input(state: WorkflowState) -> str:
    """The run's input: the latest human message (earlier turns of a session are older runs)."""
    for message in reversed(state.get("messages") or []):
        if isinstance(message, HumanMessage):
            return str(message.text)
    return ""


def retriable(exc: Exception) -> bool:
    """LangGraph retry predicate: only what the runtime itself would retry."""
    return map_error(exc).retriable


class StepRunner:
    """The LangGraph node of one step: map the input, run the template's agent, record usage.

    Step agents come from the factory's cache. A step whose template asks for approval keeps the
    workflow's checkpointer (so its interrupt can be resumed); the others run without one, which saves
    a checkpoint write per agent step.
    """

    def __init__(
        self,
        factory: TemplateCatalog,
        step: StepSpec,
        input_text: str,
        *,
        needs_checkpointer: bool,
        upstream: tuple[str, ...] = (),
    ) -> None:
        self.factory = factory
        self.step = step
        self.input_text = input_text
        self.upstream = upstream
        self.needs_checkpointer = needs_checkpointer
        self.prices = PriceTable.load(factory.settings.price_file)
        self._unsaved: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def agent(self, model_override: str | None) -> tuple[Any, str]:
        template = self.factory.get_template(self.step.template)
        model_name = self.factory.model_for(template, model_override)
        agent = self.factory.create_from_template(template.name, model=model_name)
        if self.needs_checkpointer or template.workflow is not None:
            return agent, model_name
        unsaved = self._unsaved.get(agent)
        if unsaved is None:
            unsaved = self._unsaved[agent] = agent.copy(update={"checkpointer": False})
        return unsaved, model_name

    async def __call__(self, state: WorkflowState, config: RunnableConfig) -> dict[str, Any]:
        step = self.step
        metadata = config.get("metadata") or {}
        configurable = config.get("configurable") or {}
        prices = configurable.get(PRICES_KEY) or self.prices
        ran = {record.get("step") for record in state.get("steps") or ()}  # this run's (reset per run)
        upstream = [name for name in self.upstream if name in ran]
        text = render_input(self.input_text, workflow_input(state), state.get("outputs") or {}, upstream)
        agent, model_name = self.agent(metadata.get("model_override"))
        run_id = str(metadata.get("run_id") or "")
        human = HumanMessage(content=text, id=f"{run_id}:{step.name}")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(step.timeout_s):
                final = await agent.ainvoke({"messages": [human]}, config)
        except GraphBubbleUp:
            raise
        except TimeoutError as exc:
            raise RunTimeoutError(
                f"workflow step {step.name!r} exceeded its timeout of {step.timeout_s} s", details={"step": step.name}
            ) from exc
        except Exception as exc:
            error = map_error(exc, timeout_s=step.timeout_s)
            error.details.setdefault("step", step.name)
            if error is exc:
                raise
            raise error from exc
        new = strip_charged(_step_messages(final.get("messages") or [], step.name), configurable.get(CHARGED_KEY))
        output, usage, calls = summarize_messages(new, model_name, prices)
        record = {
            "run_id": run_id,
            "step": step.name,
            "template": step.template,
            "model": model_name,
            "output": output,
            "usage": usage.model_dump(),
            "tool_calls": len(calls),
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        finished = configurable.get(FINISHED_KEY)
        if finished is not None:
            finished.append(record)
        return {"messages": new, "outputs": {step.name: output}, "steps": [record]}


def _step_messages(messages: list[BaseMessage], step: str) -> list[BaseMessage]:
    """What the step's agent added: the messages after the step's input (``<run id>:<step>``; a resumed
    step still holds the input of the run that paused, so the run id part is not compared), without
    human messages, which would read as the workflow's own input."""
    suffix = f":{step}"
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, HumanMessage) and str(message.id).endswith(suffix):
            messages = messages[index + 1 :]
            break
    return [m for m in messages if not isinstance(m, HumanMessage)]
