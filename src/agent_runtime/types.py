"""The data that flows through a run: context in, result (or stream events) out."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent_runtime.scopes import ADMIN, DEFAULT_SCOPES

__all__ = [
    "GRAPH_EVENT_TYPES",
    "AgentContext",
    "AgentResult",
    "ChatTurn",
    "GenerationOptions",
    "Principal",
    "RunStatus",
    "StreamEvent",
    "StreamEventType",
    "ToolCallRecord",
    "TurnToolCall",
    "Usage",
    "new_id",
]

RunStatus = Literal["completed", "failed", "interrupted", "cancelled"]
StreamEventType = Literal["token", "tool_call", "tool_result", "final", "error", "state", "update", "chunk", "custom"]
GRAPH_EVENT_TYPES: frozenset[str] = frozenset({"state", "update", "chunk", "custom"})
"""Events of the graph itself (streamed with ``AgentContext.graph_events``), for protocols that show a
graph's state and messages (the Agent Protocol's stream modes); the others skip them. ``state``: with
``values``, the graph's whole state (as an attempt starts), without, a step ended (the state is the
last one plus the updates since); ``update``: a ``node`` and its ``update`` (messages as their dicts);
``chunk``: a model's message chunk that is no text token (tool call arguments, content blocks) as its
dict, with ``metadata``; ``custom``: a ``value`` a node or tool wrote with LangGraph's stream writer."""


def new_id(prefix: str) -> str:
    """A random id with a readable prefix (``run_…``, ``ses_…``); 128 bits, safe in Redis keys."""
    return f"{prefix}_{uuid.uuid4().hex}"


class Principal(BaseModel):
    """Who a run is for, as established by authentication; never taken from a request body."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    user: str
    scopes: frozenset[str] = frozenset()
    key_id: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None
    monthly_usd: float | None = None

    def allows(self, scope: str) -> bool:
        """Whether the principal holds ``scope`` itself or its family wildcard (``agents:run:*``); a
        principal without any scope holds ``DEFAULT_SCOPES``."""
        held = self.scopes or DEFAULT_SCOPES
        if scope in held or "*" in held or ADMIN in held:
            return True
        family, _, _ = scope.rpartition(":")
        return bool(family) and f"{family}:*" in held


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    """Output tokens the model spent reasoning (part of ``output_tokens``), when the provider reports them."""
    cost_usd: float = 0.0

    def add(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


class ToolCallRecord(BaseModel):
    id: str
    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    output: str | None = None
    status: Literal["ok", "error"] = "ok"


class TurnToolCall(BaseModel):
    """A tool call an earlier assistant turn made (as the client replays it)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class ChatTurn(BaseModel):
    """One earlier message of a conversation a client sends along with its new input (oldest first)."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[TurnToolCall, ...] = ()
    """An assistant turn's tool calls; each is answered by a later ``tool`` turn with its id."""
    tool_call_id: str | None = None
    """A ``tool`` turn's answer to this call id."""
    name: str | None = None


class GenerationOptions(BaseModel):
    """Per-run sampling options passed to the model (only those set); ``max_tokens`` bounds each model
    call's output (below the template's own bound) and the run's quota reservation."""

    model_config = ConfigDict(frozen=True)

    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    user: str | None = None

    def model_settings(self) -> dict[str, Any]:
        """The keyword arguments for the model call (those set)."""
        settings = self.model_dump(exclude_none=True)
        if "stop" in settings:
            settings["stop"] = list(settings["stop"])
        return settings


class AgentContext(BaseModel):
    """One run request as it travels inward through the middleware onion."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    input: str
    template: str
    history: list[ChatTurn] = Field(default_factory=list)
    """Earlier turns the client sent before ``input`` (a stateless client's conversation). In a session
    that already holds messages, only the turns after the last assistant one are appended."""
    generation: GenerationOptions | None = None
    run_id: str = Field(default_factory=lambda: new_id("run"))
    request_id: str | None = None
    session_id: str | None = None
    model: str | None = None
    """Override of the template's model for this run."""
    principal: Principal | None = None
    credentials: str | None = Field(default=None, repr=False, exclude=True)
    """Raw bearer credential (API key or JWT) for AuthMiddleware; never logged or serialized."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = None
    deadline: float | None = None
    """Absolute ``time.monotonic()`` deadline, derived from ``timeout_s`` when the run starts."""
    attempt: int = 1
    streaming: bool = False
    coalesce_tokens: bool = False
    """Streaming: send the tokens that queued up behind a slow consumer as one event (see StreamControl)."""
    graph_events: bool = False
    """Streaming: also stream the graph's own events (``GRAPH_EVENT_TYPES``) and each token's message
    metadata, for protocols that show them (the Agent Protocol) and for the run event log."""
    state: dict[str, Any] = Field(default_factory=dict, exclude=True)
    """Per-run scratch space for middlewares (reservations, timers); not part of the public model."""

    @property
    def tenant(self) -> str | None:
        return self.principal.tenant if self.principal else None

    @property
    def user(self) -> str | None:
        return self.principal.user if self.principal else None

    def remaining_s(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()


class AgentResult(BaseModel):
    """What a run produced, as it travels outward through the middleware onion."""

    run_id: str
    template: str
    model: str
    output: str
    status: RunStatus = "completed"
    session_id: str | None = None
    messages: list[dict[str, Any]] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    started_at: float = 0.0
    duration_ms: float = 0.0
    time_to_first_token_ms: float | None = None
    attempts: int = 1
    metadata: dict[str, Any] = Field(default_factory=dict)
    error: dict[str, Any] | None = None

    def usage_by_model(self) -> dict[str, Usage]:
        """The run's usage split by the model that answered: a workflow's steps may each use another
        model (``metadata["steps"]``); what no step record holds counts for ``model``."""
        split: dict[str, Usage] = {}
        for record in self.metadata.get("steps") or ():
            model, usage = str(record.get("model") or self.model), Usage.model_validate(record.get("usage") or {})
            split[model] = split.get(model, Usage()).add(usage)
        assigned = Usage()
        for usage in split.values():
            assigned = assigned.add(usage)
        if assigned.total_tokens == 0:
            return {self.model: self.usage}
        rest = Usage(**{name: getattr(self.usage, name) - getattr(assigned, name) for name in Usage.model_fields})
        counts = (rest.input_tokens, rest.output_tokens, rest.cached_tokens)
        if min(counts) >= 0 and (rest.input_tokens or rest.output_tokens):  # never a negative row
            rest.cost_usd = max(rest.cost_usd, 0.0)
            split[self.model] = split.get(self.model, Usage()).add(rest)
        return split


class StreamEvent(BaseModel):
    """One item of ``execute_stream``: a token, a tool call or result, the final result, or an error."""

    type: StreamEventType
    run_id: str
    data: dict[str, Any] = Field(default_factory=dict)
    step: str | None = None
    """Which workflow step emitted the event, for workflows."""
    message: dict[str, Any] | None = None
    """With ``AgentContext.graph_events``, a token's message: its ``id``, LangGraph's ``metadata`` of the
    chunk (node, step, model) and the chunk's ``response_metadata`` / ``usage_metadata`` /
    ``chunk_position`` when it has them, for protocols that stream message chunks (the Agent
    Protocol's ``messages`` modes)."""

    @property
    def text(self) -> str:
        return str(self.data.get("text", ""))
