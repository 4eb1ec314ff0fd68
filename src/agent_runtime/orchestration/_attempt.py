"""One attempt of a run on its built agent, in named stages: ``prepare`` the graph input, ``drive`` the
graph, ``charge_failure`` when it raised, ``assemble`` the result.

``Attempt`` is the attempt's typed state (what used to travel between the stages as local variables
of one long function); the executor builds it, calls the stages in order, and maps errors once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage

from agent_runtime.callbacks.handler import AgentCallbackHandler
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.monitoring.pricing import PriceTable
from agent_runtime.orchestration._history import history_messages
from agent_runtime.orchestration._results import (
    attach_steps,
    attempt_messages,
    finish_reason,
    message_dict,
    new_since_pause,
    summarize_messages,
)
from agent_runtime.orchestration._streaming import StreamControl, run_streaming, run_to_end
from agent_runtime.orchestration.recovery import RECOVER_KEY, SALVAGED_KEY, CheckpointTurn, checkpoint_turn
from agent_runtime.types import AgentContext, AgentResult, ToolCallRecord, Usage
from agent_runtime.workflows._charges import WorkflowRun
from agent_runtime.workflows.approval import RESUME_KEY, ResumeRequest, resume_input

__all__ = ["Attempt", "Outcome", "assemble", "charge_failure", "drive", "prepare"]


@dataclass
class Attempt:
    """The state of one attempt, filled stage by stage."""

    context: AgentContext
    agent: Any
    model_name: str
    config: dict[str, Any]
    workflow: str | None = None
    flow: WorkflowRun | None = None
    handler: AgentCallbackHandler | None = None
    control: StreamControl | None = None
    resume: ResumeRequest | None = None
    """The approval answer this attempt resumes (``RESUME_KEY``)."""
    turn: CheckpointTurn | None = None
    """What a dead attempt of this queued run left on its thread (``RECOVER_KEY``)."""
    graph_input: Any = None
    anchor: str | None = None
    prefix: list[BaseMessage] | None = None
    latest: dict[str, Any] = field(default_factory=dict)
    """The state after each step (``run_to_end``): what a failed attempt already spent."""
    streamed: list[BaseMessage] = field(default_factory=list)
    started_wall: float = 0.0
    started: float = 0.0


@dataclass
class Outcome:
    messages: list[BaseMessage]
    status: str
    interrupts: Any
    steps: list[dict[str, Any]] | None


async def prepare(attempt: Attempt) -> None:
    """The graph input: an approval answer, the continuation of a dead attempt, or the new turn."""
    context = attempt.context
    if isinstance(attempt.resume, ResumeRequest):
        attempt.graph_input, attempt.anchor, attempt.prefix = await resume_input(
            attempt.agent, attempt.config, attempt.resume
        )
        if attempt.flow is not None:
            attempt.anchor = await attempt.flow.resuming()
    elif await _continues_checkpoint(attempt):
        attempt.graph_input = None  # continue where the dead attempt's last checkpoint left the graph
    else:
        turns = [*history_messages(context.history, context.run_id), HumanMessage(context.input, id=context.run_id)]
        attempt.graph_input = {"messages": turns}
        if attempt.flow is not None:
            attempt.flow.starting(attempt.graph_input)
    attempt.started_wall, attempt.started = time.time(), time.perf_counter()


async def _continues_checkpoint(attempt: Attempt) -> bool:
    """A later claim of a queued run (not a workflow) whose thread holds its turn."""
    context = attempt.context
    if attempt.flow is not None or not context.metadata.get(RECOVER_KEY):
        return False
    if "thread_id" not in attempt.config.get("configurable", {}):
        return False
    attempt.turn = await checkpoint_turn(attempt.agent, attempt.config, context.run_id)
    if attempt.turn is None:
        return False
    attempt.latest.update(before=attempt.turn.before, values=attempt.turn.values)
    return True


async def drive(attempt: Attempt) -> Outcome:
    """Run the graph to its end (or its pause), streaming events when the attempt is streamed."""
    context, control = attempt.context, attempt.control
    if control is not None:
        messages, status, interrupts, steps = await run_streaming(
            attempt.agent,
            attempt.graph_input,
            context.run_id,
            attempt.config,
            control,
            workflow=attempt.flow is not None,
            collected=attempt.streamed,
        )
        return Outcome(new_since_pause(messages, attempt.prefix), status, interrupts, steps)
    state = await run_to_end(attempt.agent, attempt.graph_input, attempt.config, attempt.latest)
    messages = attempt_messages(attempt.latest, attempt.anchor or context.run_id)
    steps = state.get("steps") if attempt.workflow else None
    return Outcome(messages, "completed", state.get("__interrupt__"), steps)


def charge_failure(attempt: Attempt, error: AgentRuntimeError, prices: PriceTable) -> None:
    """Put on the error what the failed attempt spent (the provider billed the calls it made)."""
    if attempt.flow is not None:
        attempt.flow.failed(error)  # a workflow pays for the steps it finished
    elif "usage" not in error.details:
        spent = new_since_pause(attempt.streamed, attempt.prefix) or attempt_messages(
            attempt.latest, attempt.anchor or attempt.context.run_id
        )
        if spent:
            error.details["usage"] = summarize_messages(spent, attempt.model_name, prices)[1].model_dump()
    error.details.setdefault("model", attempt.model_name)


async def assemble(attempt: Attempt, outcome: Outcome, prices: PriceTable) -> AgentResult:
    """The attempt's ``AgentResult``: its messages, output, usage (its own calls only), tool calls."""
    context, flow, control = attempt.context, attempt.flow, attempt.control
    messages, steps = outcome.messages, outcome.steps
    if flow is not None:
        messages = flow.settle(messages)
    if attempt.prefix is not None:
        messages = [*attempt.prefix, *messages]
    if flow is not None and outcome.interrupts:  # a paused step's model calls so far are this run's to pay
        paused, records = await flow.paused(context.run_id, attempt.model_name)
        messages, steps = [*messages, *paused], [*(steps or ()), *records]
    messages, output, usage, tool_calls, salvaged = summarize(messages, attempt.turn, attempt.model_name, prices)
    if control is not None and usage.total_tokens == 0 and control.tokens:
        usage = control.estimated_usage(context.input, attempt.model_name, prices)
    result = AgentResult(
        run_id=context.run_id,
        template=context.template,
        model=attempt.model_name,
        output=output,
        status="interrupted" if outcome.interrupts else outcome.status,
        session_id=context.session_id,
        messages=[message_dict(m) for m in messages],
        usage=usage,
        tool_calls=tool_calls,
        started_at=attempt.started_wall,
        duration_ms=(time.perf_counter() - attempt.started) * 1000,
        time_to_first_token_ms=control.ttft_ms(attempt.started) if control is not None else None,
        attempts=context.attempt,
    )
    _annotate(result, attempt, outcome, steps, salvaged)
    result.metadata["finish_reason"] = finish_reason(messages)
    return result


def _annotate(
    result: AgentResult,
    attempt: Attempt,
    outcome: Outcome,
    steps: list[dict[str, Any]] | None,
    salvaged: Usage | None,
) -> None:
    meta = result.metadata
    if outcome.interrupts:
        meta["interrupts"] = [_interrupt_dict(i) for i in outcome.interrupts]
        meta["resume_id"] = attempt.context.session_id
    if attempt.workflow:
        attach_steps(result, steps, attempt.context.run_id)
    if RESUME_KEY in attempt.context.metadata:
        meta["resumed"] = True
    if salvaged is not None:
        meta[SALVAGED_KEY] = salvaged
        meta["resumed_from_checkpoint"] = True
    if attempt.model_name.startswith("offline"):
        meta["offline"] = True
    if attempt.handler is not None:
        meta["callbacks"] = attempt.handler.get_summary().to_dict()


def summarize(
    messages: list[BaseMessage], turn: CheckpointTurn | None, model_name: str, prices: PriceTable
) -> tuple[list[BaseMessage], str, Usage, list[ToolCallRecord], Usage | None]:
    """Messages, output, usage and tool calls of the attempt; a resumed one's turn is the earlier
    attempts' steps plus its own, but only its own are its usage (the others come back as salvaged)."""
    if turn is None:
        output, usage, tool_calls = summarize_messages(messages, model_name, prices)
        return messages, output, usage, tool_calls, None
    salvaged = summarize_messages(turn.done, model_name, prices)[1]
    usage = summarize_messages(messages, model_name, prices)[1]
    whole = [*turn.done, *messages]
    output, _, tool_calls = summarize_messages(whole, model_name, prices)
    return whole, output, usage, tool_calls, salvaged


def _interrupt_dict(interrupt: Any) -> dict[str, Any]:
    return {"id": getattr(interrupt, "id", None), "value": getattr(interrupt, "value", interrupt)}
