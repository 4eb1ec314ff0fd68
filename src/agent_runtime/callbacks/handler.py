"""``AgentCallbackHandler``: records LLM, tool and chain events of one run, bounded, with a summary.

Create one handler per run (the executor does): events of concurrent runs then never mix. The
handler runs inline (``run_inline``), so under async execution LangChain calls it on the event loop
instead of hopping to a thread for every event.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

__all__ = ["EVENT_TYPES", "AgentCallbackHandler", "CallbackEvent", "ExecutionSummary", "langsmith_tracer"]

EVENT_TYPES = (
    "llm_start", "llm_new_token", "llm_end", "llm_error",
    "tool_start", "tool_end", "tool_error",
    "chain_start", "chain_end", "chain_error",
)  # fmt: skip


@dataclass(frozen=True)
class CallbackEvent:
    """One thing that happened during a run."""

    event_type: str
    timestamp: float
    run_id: str
    parent_run_id: str | None = None
    name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type,
            "timestamp": self.timestamp,
            "run_id": self.run_id,
            "parent_run_id": self.parent_run_id,
            "name": self.name,
            "data": self.data,
        }


@dataclass
class ExecutionSummary:
    llm_calls: int = 0
    tool_calls: int = 0
    chain_runs: int = 0
    errors: int = 0
    tokens_streamed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    llm_latency_ms: float = 0.0
    tool_latency_ms: float = 0.0
    duration_ms: float = 0.0
    time_to_first_token_ms: float | None = None
    events_recorded: int = 0
    events_dropped: int = 0
    tools_used: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class AgentCallbackHandler(BaseCallbackHandler):
    """Records every LLM, tool and chain event of a run.

    Args:
        max_events: at most this many events are kept (oldest dropped first); the summary still
            counts every event and ``dropped_events`` says how many were dropped.
        on_token: called with each streamed token (the streaming hook).
        record_chains: chain events are many (one per graph node); turn them off to save memory.
    """

    run_inline = True
    raise_error = False

    def __init__(
        self,
        *,
        max_events: int = 10_000,
        on_token: Callable[[str], None] | None = None,
        record_chains: bool = True,
    ) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.max_events = max_events
        self.on_token = on_token
        self.record_chains = record_chains
        self._events: deque[CallbackEvent] = deque(maxlen=max_events)
        self._lock = threading.Lock()
        self._started: dict[UUID, float] = {}
        self._summary = ExecutionSummary()
        self._t0 = time.time()
        self._seen = 0

    # -- recording ---------------------------------------------------------------------------------
    def _record(
        self, event_type: str, run_id: UUID, parent_run_id: UUID | None, name: str | None, data: dict[str, Any]
    ) -> None:
        event = CallbackEvent(
            event_type, time.time(), str(run_id), str(parent_run_id) if parent_run_id else None, name, data
        )
        with self._lock:
            self._seen += 1
            self._events.append(event)

    def _elapsed_ms(self, run_id: UUID) -> float:
        started = self._started.pop(run_id, None)
        return (time.perf_counter() - started) * 1000 if started is not None else 0.0

    @property
    def dropped_events(self) -> int:
        return self._seen - len(self._events)

    # -- LLM ---------------------------------------------------------------------------------------
    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._llm_start(serialized, run_id, parent_run_id, {"messages": sum(len(batch) for batch in messages)})

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._llm_start(serialized, run_id, parent_run_id, {"prompts": len(prompts)})

    def _llm_start(
        self, serialized: dict[str, Any] | None, run_id: UUID, parent_run_id: UUID | None, data: dict[str, Any]
    ) -> None:
        self._started[run_id] = time.perf_counter()
        self._summary.llm_calls += 1
        self._record("llm_start", run_id, parent_run_id, _name(serialized), data)

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(token, str):
            token = "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in token)
        if self._summary.time_to_first_token_ms is None:
            self._summary.time_to_first_token_ms = (time.time() - self._t0) * 1000
        self._summary.tokens_streamed += 1
        self._record("llm_new_token", run_id, parent_run_id, None, {"token": token})
        if self.on_token is not None:
            self.on_token(token)

    def on_llm_end(
        self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        latency = self._elapsed_ms(run_id)
        self._summary.llm_latency_ms += latency
        usage = _usage_of(response)
        summary = self._summary
        summary.input_tokens += usage.get("input_tokens", 0)
        summary.output_tokens += usage.get("output_tokens", 0)
        summary.total_tokens += usage.get("total_tokens", 0)
        summary.cached_tokens += usage.get("cached_tokens", 0)
        self._record("llm_end", run_id, parent_run_id, None, {"usage": usage, "latency_ms": latency})

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self._error("llm_error", error, run_id, parent_run_id)

    # -- tools -------------------------------------------------------------------------------------
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._started[run_id] = time.perf_counter()
        name = _name(serialized) or kwargs.get("name")
        self._summary.tool_calls += 1
        if name:
            self._summary.tools_used[name] = self._summary.tools_used.get(name, 0) + 1
        self._record("tool_start", run_id, parent_run_id, name, {"input": inputs if inputs is not None else input_str})

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        latency = self._elapsed_ms(run_id)
        self._summary.tool_latency_ms += latency
        content = getattr(output, "content", output)
        self._record(
            "tool_end",
            run_id,
            parent_run_id,
            kwargs.get("name"),
            {"output": str(content)[:2000], "latency_ms": latency},
        )

    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self._error("tool_error", error, run_id, parent_run_id)

    # -- chains ------------------------------------------------------------------------------------
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any] | Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._summary.chain_runs += 1
        if self.record_chains:
            self._record("chain_start", run_id, parent_run_id, kwargs.get("name") or _name(serialized), {})

    def on_chain_end(
        self, outputs: dict[str, Any] | Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        if self.record_chains:
            self._record("chain_end", run_id, parent_run_id, None, {})

    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        if type(error).__name__ == "GraphInterrupt":
            return  # an approval pause, not a failure
        self._error("chain_error", error, run_id, parent_run_id)

    def _error(self, event_type: str, error: BaseException, run_id: UUID, parent_run_id: UUID | None) -> None:
        self._started.pop(run_id, None)
        self._summary.errors += 1
        self._record(event_type, run_id, parent_run_id, None, {"error": type(error).__name__, "message": str(error)})

    # -- queries -----------------------------------------------------------------------------------
    @property
    def events(self) -> list[CallbackEvent]:
        with self._lock:
            return list(self._events)

    def get_events(
        self,
        event_type: str | Iterable[str] | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
    ) -> list[CallbackEvent]:
        """Events filtered by type (one or several) and by a time window (epoch seconds)."""
        wanted = {event_type} if isinstance(event_type, str) else set(event_type) if event_type else None
        if wanted is not None and not wanted <= set(EVENT_TYPES):
            raise ValueError(f"unknown event type(s) {sorted(wanted - set(EVENT_TYPES))}; known: {EVENT_TYPES}")
        return [
            e for e in self.events
            if (wanted is None or e.event_type in wanted)
            and (since is None or e.timestamp >= since)
            and (until is None or e.timestamp <= until)
        ]  # fmt: skip

    def get_summary(self) -> ExecutionSummary:
        summary = ExecutionSummary(**{**self._summary.__dict__, "tools_used": dict(self._summary.tools_used)})
        summary.duration_ms = (time.time() - self._t0) * 1000
        summary.events_recorded = len(self._events)
        summary.events_dropped = self.dropped_events
        return summary

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._seen = 0
            self._started.clear()
            self._summary = ExecutionSummary()
            self._t0 = time.time()

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.get_summary().to_dict(), "events": [e.to_dict() for e in self.events]}


def _name(serialized: dict[str, Any] | None) -> str | None:
    if not serialized:
        return None
    name = serialized.get("name")
    if name:
        return str(name)
    ids = serialized.get("id")
    return str(ids[-1]) if isinstance(ids, list) and ids else None


def _usage_of(response: LLMResult) -> dict[str, int]:
    """Usage from ``generations[0][0].message.usage_metadata`` (chat models), else ``llm_output``."""
    for batch in response.generations:
        for generation in batch:
            usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if usage:
                details = usage.get("input_token_details") or {}
                return {
                    "input_tokens": int(usage.get("input_tokens", 0)),
                    "output_tokens": int(usage.get("output_tokens", 0)),
                    "total_tokens": int(usage.get("total_tokens", 0)),
                    "cached_tokens": int(details.get("cache_read", 0) or 0),
                }
    token_usage = (response.llm_output or {}).get("token_usage") or {}
    return {
        "input_tokens": int(token_usage.get("prompt_tokens", 0)),
        "output_tokens": int(token_usage.get("completion_tokens", 0)),
        "total_tokens": int(token_usage.get("total_tokens", 0)),
        "cached_tokens": 0,
    }


def langsmith_tracer(project: str | None = None) -> BaseCallbackHandler | None:
    """A LangSmith tracer when ``LANGSMITH_TRACING=true`` and an API key are set, else None."""
    enabled = os.environ.get("LANGSMITH_TRACING", os.environ.get("LANGCHAIN_TRACING_V2", "")).lower() == "true"
    has_key = bool(os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY"))
    if not (enabled and has_key):
        return None
    from langchain_core.tracers.langchain import LangChainTracer

    return LangChainTracer(project_name=project or os.environ.get("LANGSMITH_PROJECT"))
