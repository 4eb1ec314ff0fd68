"""A run's ``StreamEvent``s as LangGraph's server streams them: ``(event, data)`` per stream mode.

Pure shaping, no I/O: the in-request stream and the join both feed the same events (live, or read
back from the run event log) through a ``StreamShaper``. What LangGraph's server sends, as measured
on its wire (``langgraph-api`` 0.16): a ``metadata`` event ``{run_id, attempt}`` first, then one event
per chunk of each requested mode, ``error`` ``{error, message}`` when the run fails; messages as
their LangChain dicts.

- ``values``: the thread's whole state after every step (with ``__interrupt__`` when it paused),
  accumulated from the state as the attempt started and the nodes' updates since.
- ``updates``: ``{node: update}`` per node that ran, ``{"__interrupt__": [...]}`` when it paused.
- ``messages-tuple`` (event ``messages``): ``[chunk, metadata]`` per model chunk, and the messages
  nodes wrote that no model streamed (tool results) whole.
- ``messages``: ``messages/metadata`` once per message, ``messages/partial`` with the message so far
  per chunk, ``messages/complete`` for the messages nodes wrote whole.
- ``custom``: what nodes and tools wrote with LangGraph's stream writer.

``events`` (LangChain's callback events), ``debug``, ``tasks`` and ``checkpoints`` (Pregel's tasks and
checkpoint configs), ``tools`` and ``lifecycle`` are refused (422 naming the mode): the executor does
not stream them, so they could not be sent faithfully.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from langchain_core.messages import AIMessageChunk, message_chunk_to_message

from agent_runtime.errors import ValidationError
from agent_runtime.server.routes.agent_protocol._run_body import STREAMED_MODES
from agent_runtime.types import StreamEvent

__all__ = [
    "DEFAULT_MODE",
    "REFUSED_MODES",
    "STREAM_MODES",
    "RunInfo",
    "StreamShaper",
    "encode",
    "error_part",
    "merge_messages",
    "stream_modes",
]

STREAM_MODES: Final = STREAMED_MODES
REFUSED_MODES: Final = ("events", "debug", "tasks", "checkpoints", "tools", "lifecycle")
DEFAULT_MODE: Final = "values"
_REMOVE_ALL: Final = "__remove_all__"
_MAX_PARTIALS: Final = 256
"""Messages whose chunks one ``messages`` stream accumulates at once (a run streams a few)."""

Part = tuple[str, Any]


def stream_modes(requested: str | Sequence[str] | None) -> tuple[str, ...]:
    """The modes of a run request's ``stream_mode`` (LangGraph's default: ``values``), each once.

    Raises:
        ValidationError: a mode agent-runtime does not stream, or no mode of LangGraph's.
    """
    if requested is None:
        return (DEFAULT_MODE,)
    modes = [requested] if isinstance(requested, str) else list(requested)
    for mode in modes:
        if mode not in STREAM_MODES:
            why = "is not supported by agent-runtime" if mode in REFUSED_MODES else "is not a stream mode"
            raise ValidationError(
                f"stream_mode {mode!r} {why} (supported: {', '.join(STREAM_MODES)})",
                details={"field": "stream_mode", "mode": mode},
            )
    return tuple(dict.fromkeys(modes)) or (DEFAULT_MODE,)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What LangGraph's server puts in every message's metadata, besides the graph's own keys."""

    run_id: str
    assistant_id: str
    graph_id: str
    thread_id: str | None = None
    attempt: int = 1

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"graph_id": self.graph_id, "assistant_id": self.assistant_id}
        out["run_attempt"] = self.attempt
        if self.thread_id is not None:
            out["thread_id"] = self.thread_id
        out["run_id"] = self.run_id
        return out


@dataclass
class StreamShaper:
    """The SSE parts of one run's events for ``modes`` (one shaper per response)."""

    modes: tuple[str, ...]
    run: RunInfo
    values: dict[str, Any] | None = None
    """The thread's state as far as the events told it (``values`` mode)."""
    interrupts: list[Any] | None = None
    streamed: set[str] = field(default_factory=set)
    """Ids of the messages a model streamed in chunks (not sent again whole)."""
    partials: dict[str, AIMessageChunk] = field(default_factory=dict)
    tuples: bool = field(init=False)
    legacy: bool = field(init=False)
    """``messages`` asked without ``messages-tuple`` (with both, LangGraph's server sends the tuples only)."""

    def __post_init__(self) -> None:
        self.tuples = "messages-tuple" in self.modes
        self.legacy = "messages" in self.modes and not self.tuples

    def start(self) -> Part:
        return "metadata", {"run_id": self.run.run_id, "attempt": self.run.attempt}

    def shape(self, event: StreamEvent) -> list[Part]:
        """The parts ``event`` makes in the requested modes (none for most events in most modes)."""
        kind = event.type
        if kind in ("token", "chunk"):
            return list(self._chunk(event))
        if kind == "update":
            return list(self._update(str(event.data.get("node")), event.data.get("update")))
        if kind == "state":
            return self._state(event.data.get("values"))
        if kind == "custom":
            return [("custom", event.data.get("value"))] if "custom" in self.modes else []
        if kind == "error":
            return [error_part(event.data)]
        return []

    # -- values ---------------------------------------------------------------------------------------
    def _state(self, values: Any) -> list[Part]:
        if isinstance(values, dict):
            self.values, self.interrupts = dict(values), None
        if "values" not in self.modes or self.values is None:
            return []
        out = dict(self.values)
        if self.interrupts:
            out["__interrupt__"] = self.interrupts
        return [("values", out)]

    def _apply(self, update: Any) -> None:
        if self.values is None or not isinstance(update, dict):
            return
        for key, value in update.items():
            if key == "messages":
                self.values["messages"] = merge_messages(self.values.get("messages") or [], value)
            else:
                self.values[key] = value

    # -- updates and whole messages -------------------------------------------------------------------
    def _update(self, node: str, update: Any) -> Iterable[Part]:
        if node == "__interrupt__":
            self.interrupts = list(update or [])
        else:
            self._apply(update)
        if node != "__interrupt__" and isinstance(update, dict) and (self.tuples or self.legacy):
            for message in _as_list(update.get("messages")):
                if _whole_message(message) and message.get("id") not in self.streamed:
                    yield from self._whole(message, node)
        if "updates" in self.modes:
            yield "updates", {node: update}

    def _whole(self, message: dict[str, Any], node: str) -> Iterable[Part]:
        metadata = {**self.run.metadata(), "langgraph_node": node}
        if self.tuples:
            yield "messages", [message, metadata]
        if self.legacy:
            yield "messages/metadata", {str(message.get("id")): {"metadata": metadata}}
            yield "messages/complete", [message]

    # -- chunks ---------------------------------------------------------------------------------------
    def _chunk(self, event: StreamEvent) -> Iterable[Part]:
        if not (self.tuples or self.legacy):
            return
        chunk, graph_metadata = _chunk_of(event)
        message_id = str(chunk.get("id"))
        metadata = {**self.run.metadata(), **graph_metadata}
        if self.tuples:
            yield "messages", [chunk, metadata]
        if self.legacy:
            if message_id not in self.streamed:
                yield "messages/metadata", {message_id: {"metadata": metadata}}
            yield "messages/partial", [self._accumulate(message_id, chunk)]
        self.streamed.add(message_id)

    def _accumulate(self, message_id: str, chunk: dict[str, Any]) -> dict[str, Any]:
        """The message so far (LangChain's chunk addition), as the full message's dict."""
        piece = AIMessageChunk.model_validate(chunk)
        so_far = self.partials.get(message_id)
        so_far = piece if so_far is None else so_far + piece
        if message_id not in self.partials and len(self.partials) >= _MAX_PARTIALS:
            self.partials.pop(next(iter(self.partials)))
        self.partials[message_id] = so_far
        dumped: dict[str, Any] = message_chunk_to_message(so_far).model_dump(mode="json")
        return dumped


def _chunk_of(event: StreamEvent) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``token`` or ``chunk`` event's chunk dict (as ``AIMessageChunk.model_dump`` has it) and its
    graph metadata."""
    if event.type == "chunk":
        return dict(event.data.get("chunk") or {}), dict(event.data.get("metadata") or {})
    message = event.message or {}
    chunk: dict[str, Any] = {
        "content": event.text,
        "additional_kwargs": {},
        "response_metadata": message.get("response_metadata") or {},
        "type": "AIMessageChunk",
        "name": None,
        "id": message.get("id"),
        "tool_calls": [],
        "invalid_tool_calls": [],
        "usage_metadata": message.get("usage_metadata"),
        "tool_call_chunks": [],
        "chunk_position": message.get("chunk_position"),
    }
    return chunk, dict(message.get("metadata") or {})


def _whole_message(message: Any) -> bool:
    """A message dict (not a raw ``{"role": ...}`` a custom node returned, nor a removal)."""
    return isinstance(message, dict) and message.get("type") not in (None, "remove")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def merge_messages(current: list[Any], new: Any) -> list[Any]:
    """LangGraph's ``add_messages`` over message dicts: a known id replaces its message, a ``remove``
    deletes one (or all, ``__remove_all__``), anything else is appended."""
    merged = list(current)
    for message in _as_list(new):
        message_id = message.get("id") if isinstance(message, dict) else None
        if isinstance(message, dict) and message.get("type") == "remove":
            merged = [] if message_id == _REMOVE_ALL else [m for m in merged if _id(m) != message_id]
            continue
        at = next((i for i, m in enumerate(merged) if message_id is not None and _id(m) == message_id), None)
        if at is None:
            merged.append(message)
        else:
            merged[at] = message
    return merged


def _id(message: Any) -> Any:
    return message.get("id") if isinstance(message, dict) else None


def error_part(error: dict[str, Any]) -> Part:
    """LangGraph's ``error`` event: ``{error, message}`` (its error's name; here, agent-runtime's code)."""
    return "error", {"error": str(error.get("code", "run_failed")), "message": str(error.get("message", ""))}


def encode(part: Part, id: str | None = None) -> bytes:
    """One SSE event as LangGraph's server frames it: ``event``, one ``data`` line of compact JSON,
    ``id`` when the event is in the run's log, CRLF line ends."""
    name, data = part
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    tail = "" if id is None else f"id: {id}\r\n"
    return f"event: {name}\r\ndata: {body}\r\n{tail}\r\n".encode()
