"""The body of LangGraph's run create (``/threads/{id}/runs``, ``/runs``, ``/wait``, ``/stream``, batch)
and the one function that turns it into the run's ``AgentContext``, through ``build_context`` as ``/v1``.

Fields LangGraph defines that agent-runtime does not implement are listed in ``unsupported``: a client
that sets one gets 422 naming it, never a silent ignore. A run's input is ``input.messages``
(``_run_input``): the earlier turns and the new user message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal

from fastapi import Request
from pydantic import Field, field_validator

from agent_runtime.errors import ValidationError
from agent_runtime.runs.multitask import MultitaskStrategy
from agent_runtime.runs.recorder import KWARGS_KEY
from agent_runtime.runtime import Runtime
from agent_runtime.server.routes.agent_protocol._common import APModel
from agent_runtime.server.routes.agent_protocol._run_input import RunInput, parse_input
from agent_runtime.server.routes.runs import build_context
from agent_runtime.server.schemas import ID_PATTERN
from agent_runtime.types import AgentContext, Principal
from agent_runtime.workflows.approval import RESUME_DECISIONS_KEY, RESUME_KEY, ResumeRequest

__all__ = [
    "STREAMED_MODES",
    "STREAM_MODES",
    "BatchRunCreate",
    "RunCommand",
    "RunConfig",
    "RunCreate",
    "StreamMode",
    "resume_decisions",
    "run_context",
]

StreamMode = Literal["values", "updates", "messages", "messages-tuple", "custom"]
STREAM_MODES: Final[tuple[str, ...]] = StreamMode.__args__  # type: ignore[attr-defined]
_NOT_STREAMED: Final = frozenset({"events", "debug", "tasks", "checkpoints", "tools"})
"""LangGraph's stream modes agent-runtime does not produce: refused by name."""
STREAMED_MODES: Final = STREAM_MODES
"""The modes agent-runtime streams (``_stream_modes`` shapes them)."""


def _values_only() -> list[StreamMode]:
    return ["values"]


class RunCommand(APModel):
    """``Command(resume=...)``: answers the interrupt the thread waits at (human in the loop)."""

    unsupported: ClassVar[tuple[str, ...]] = ("update", "goto")
    resume: Any = None


class RunConfig(APModel):
    """LangGraph's ``RunnableConfig``: nothing of it changes a run here, so only an empty one passes."""

    unsupported: ClassVar[tuple[str, ...]] = (
        "configurable",
        "tags",
        "recursion_limit",
        "run_name",
        "max_concurrency",
        "metadata",
        "run_id",
    )


class RunCreate(APModel):
    """A run to create; ``assistant_id`` is a template name or the UUID ``/assistants/search`` returns."""

    unsupported: ClassVar[tuple[str, ...]] = (
        "context",
        "checkpoint",
        "checkpoint_id",
        "checkpoint_during",
        "interrupt_before",
        "interrupt_after",
        "feedback_keys",
        "langsmith_tracer",
        "durability",
        "strict_resume",
    )
    assistant_id: str = Field(min_length=1, max_length=200)
    input: dict[str, Any] | None = None
    command: RunCommand | None = None
    metadata: dict[str, Any] | None = None
    config: RunConfig | None = None
    multitask_strategy: MultitaskStrategy | None = None
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    """Stateless runs: delete (the default) or keep their temporary thread."""
    webhook: str | None = Field(default=None, max_length=2000)
    after_seconds: float = Field(default=0.0, ge=0, le=86_400 * 366)
    stream_mode: list[StreamMode] = Field(default_factory=_values_only, max_length=len(STREAM_MODES))
    stream_subgraphs: bool = False
    """Accepted for an assistant whose graph has no subgraphs (the stream is the same); refused for
    one that has (their events are not streamed apart). Agent Chat UI always sets it."""
    stream_resumable: bool = False
    """Every run's events are kept in its bounded event log: joins are always resumable."""

    @field_validator("stream_mode", mode="before")
    @classmethod
    def _modes(cls, value: Any) -> Any:
        modes = [value] if isinstance(value, str) else value
        refused = [m for m in modes if isinstance(m, str) and m in _NOT_STREAMED] if isinstance(modes, list) else []
        if refused:
            raise ValueError(
                f"stream_mode {refused[0]!r} is not supported by agent-runtime (supported: {', '.join(STREAM_MODES)})"
            )
        return modes

    def turns(self) -> RunInput:
        """The run's earlier turns and new user text (``input.messages``), or the resume's label."""
        if self.command is not None:
            if self.input:
                raise ValidationError("give input or command, not both", details={"param": "command"})
            return RunInput((), "resume: " + ", ".join(_kinds(self.command.resume))[:200])
        return parse_input(self.input)

    def text(self) -> str:
        return self.turns().text

    def kwargs(self) -> dict[str, Any]:
        """What LangGraph shows as a run's ``kwargs``, kept with the record."""
        out: dict[str, Any] = {"stream_mode": list(self.stream_mode)}
        if self.on_completion is not None:
            out["on_completion"] = self.on_completion
        if self.multitask_strategy is not None:
            out["multitask_strategy"] = self.multitask_strategy
        if self.webhook is not None:
            out["webhook"] = self.webhook
        if self.command is not None:
            out["command"] = {"resume": self.command.resume}
        return out


class BatchRunCreate(RunCreate):
    """One run of ``/runs/batch``: stateless, or on ``thread_id``."""

    thread_id: str | None = Field(default=None, pattern=ID_PATTERN)


def resume_decisions(resume: Any) -> Any:
    """The executor's decisions from a LangGraph resume value: LangChain's ``{"decisions": [...]}``
    (per interrupt id too) is unwrapped, anything else (``"approve"``, a list) passes as given."""
    if isinstance(resume, Mapping):
        if set(resume) == {"decisions"}:
            return resume["decisions"]
        if resume and all(isinstance(v, Mapping) and set(v) == {"decisions"} for v in resume.values()):
            return {k: v["decisions"] for k, v in resume.items()}
    if resume is None:
        raise ValidationError("command.resume is required", details={"param": "command.resume"})
    return resume


def _kinds(resume: Any) -> list[str]:
    from agent_runtime.workflows.approval import decision_kinds

    try:
        return decision_kinds(resume_decisions(resume)) or ["decisions"]
    except ValidationError:
        return ["decisions"]


def run_context(
    runtime: Runtime,
    principal: Principal,
    request: Request,
    body: RunCreate,
    *,
    template: str,
    thread_id: str,
) -> AgentContext:
    """The run's context on thread ``thread_id``: the same ``build_context`` as ``/v1/runs``, plus the
    protocol's kwargs and, for a ``command``, the decisions its queued run resumes the thread with."""
    turns = body.turns()
    context = build_context(
        runtime,
        principal,
        request,
        template=template,
        text=turns.text,
        session_id=thread_id,
        client_metadata=body.metadata,
    )
    context.history = list(turns.history)
    context.metadata[KWARGS_KEY] = body.kwargs()
    if body.command is not None:
        decisions = resume_decisions(body.command.resume)
        context.metadata[RESUME_DECISIONS_KEY] = decisions
        context.metadata[RESUME_KEY] = ResumeRequest(decisions=decisions, session_id=thread_id)
        context.metadata["resume"] = True
    return context
