"""What a workflow run pays for steps that did not simply finish: paused for approval, or cut short.

A run that fails pays for the steps that finished before the failure (``FINISHED_KEY`` collects their
records; the error carries their usage in ``details["usage"]``, as for any run that fails part way).

Paused steps are charged by the run that paused, never again by its resume.

A step pausing inside its agent never returns a state update, so the workflow's own state does not hold
its model calls. The run that paused reads them from the step's checkpoint (the paused step keeps the
session's checkpointer) and charges them; the resume marks those same messages as charged
(``CHARGED_KEY``), so the step's record counts only what the resume adds.

Steps that ran in parallel with a paused one and finished before the pause are reported and charged
by the run that paused too (their results are in its final values); LangGraph applies their writes
only when the resume completes the superstep, so the resume leaves their messages out of its own.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.monitoring.pricing import PriceTable
from agent_runtime.orchestration._results import summarize_messages
from agent_runtime.types import Usage

__all__ = ["CHARGED_KEY", "FINISHED_KEY", "PRICES_KEY", "STEPS_RESET", "WorkflowRun", "strip_charged"]

CHARGED_KEY = "agent_runtime_charged"
"""``configurable`` key: ids of the messages an earlier pause already charged (not persisted)."""
FINISHED_KEY = "agent_runtime_finished"
"""``configurable`` key: the list each step appends its record to when it finishes (not persisted)."""
PRICES_KEY = "agent_runtime_prices"
"""``configurable`` key under which the executor hands its price table to the steps (not persisted)."""

STEPS_RESET: list[dict[str, Any]] = [{"reset": True}]
"""The ``steps`` input of a new run: it clears the previous run's records from a session's checkpoint,
so it does not grow run after run. A resume sends no input, so the records of the run that paused (and
of parallel steps that finished before the pause) stay beside the resume's own, in any order."""


class WorkflowRun:
    """The executor's side of one workflow run: what its steps read from the config, and what it pays
    for steps that paused or never finished (``configurable`` objects are never written to checkpoints)."""

    def __init__(self, graph: Any, config: dict[str, Any], prices: PriceTable, step_templates: dict[str, str]) -> None:
        self.graph, self.config, self.prices, self.step_templates = graph, config, prices, step_templates
        self.finished: list[dict[str, Any]] = []
        self.charged: frozenset[str] = frozenset()
        self.reported: frozenset[str] = frozenset()
        configurable = config.setdefault("configurable", {})
        configurable[PRICES_KEY] = prices
        configurable[FINISHED_KEY] = self.finished

    def starting(self, graph_input: dict[str, Any]) -> None:
        """A new run of a declarative workflow clears the previous run's step records."""
        if self.step_templates:
            graph_input["steps"] = STEPS_RESET

    async def resuming(self) -> str | None:
        """Before a resume: everything the paused steps hold was charged by the run(s) that paused them,
        and so were the messages of steps that finished beside them (waiting as pending writes). Returns
        the id of the message this run's new messages follow."""
        snapshot = await self.graph.aget_state(self.config)
        paused = await _paused_steps(self.graph, self.config, snapshot)
        self.charged = frozenset(str(m.id) for _, messages in paused for m in messages)
        self.reported = frozenset(
            str(m.id)
            for task in snapshot.tasks
            if not task.interrupts and isinstance(task.result, dict)
            for m in task.result.get("messages") or ()
            if isinstance(m, BaseMessage)
        )
        self.config["configurable"][CHARGED_KEY] = self.charged
        # the state LangGraph shows already holds those pending writes; this run's messages come after
        # the last message that was really committed before the pause
        committed = [m for m in (snapshot.values or {}).get("messages") or () if str(m.id) not in self.reported]
        return str(committed[-1].id) if committed else None

    def settle(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        """A resumed run's messages without those the run that paused already reported and charged."""
        if not self.reported:
            return messages
        return [m for m in messages if str(m.id) not in self.reported]

    def failed(self, error: AgentRuntimeError) -> None:
        """``error`` carries the usage of the steps finished before it, so the run pays for them."""
        if self.finished and "usage" not in error.details:
            usage = Usage()
            for record in self.finished:
                usage = usage.add(Usage.model_validate(record["usage"]))
            error.details["usage"] = usage.model_dump()  # JSON-ready: error events and logs carry it
            error.details["steps"] = [{k: v for k, v in r.items() if k != "output"} for r in self.finished]
            error.details.setdefault("finished_steps", len(self.finished))

    async def paused(self, run_id: str, model: str) -> tuple[list[BaseMessage], list[dict[str, Any]]]:
        """After a run paused: the paused steps' new messages (for the run's usage and tool calls) and one
        ``interrupted`` step record each, so the per-step records still add up to the run's usage."""
        messages: list[BaseMessage] = []
        records: list[dict[str, Any]] = []
        for step, step_messages in await _paused_steps(self.graph, self.config):
            new = [m for m in step_messages if str(m.id) not in self.charged and not isinstance(m, HumanMessage)]
            answered = next((str(m.response_metadata["model_name"]) for m in new if _answered_by(m)), model)
            _, usage, calls = summarize_messages(new, answered, self.prices)
            messages += new
            records.append(
                {
                    "run_id": run_id,
                    "step": step,
                    "template": self.step_templates.get(step, step),
                    "model": answered,
                    "output": "",
                    "status": "interrupted",
                    "usage": usage.model_dump(),
                    "tool_calls": len(calls),
                    "duration_ms": 0.0,
                }
            )
        return messages, records


async def _paused_steps(
    graph: Any, config: dict[str, Any], snapshot: Any = None
) -> list[tuple[str, list[BaseMessage]]]:
    """(step name, its agent's messages so far) for every step waiting on an interrupt. A step calls its
    agent from Python, so LangGraph cannot list it as a subgraph: its checkpoint is read by namespace."""
    if snapshot is None:
        snapshot = await graph.aget_state(config)
    thread = config["configurable"]["thread_id"]
    found: list[tuple[str, list[BaseMessage]]] = []
    for task in snapshot.tasks:
        if not task.interrupts:
            continue
        namespace = f"{task.name}:{task.id}"  # LangGraph's checkpoint namespace of a task's nested graph
        saved = await graph.checkpointer.aget_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": namespace}})
        values = saved.checkpoint["channel_values"] if saved is not None else {}
        found.append((task.name, list(values.get("messages") or ())))
    return found


def strip_charged(messages: list[BaseMessage], charged: frozenset[str] | None) -> list[BaseMessage]:
    """``messages`` with the usage of already charged model calls removed (they stay in the history)."""
    if not charged:
        return messages
    return [m.model_copy(update={"usage_metadata": None}) if str(m.id) in charged else m for m in messages]


def _answered_by(message: BaseMessage) -> bool:
    return isinstance(message, AIMessage) and bool(message.response_metadata.get("model_name"))
