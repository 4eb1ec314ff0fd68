"""The plumbing of ``execute_stream``: a bounded queue between the run and its consumer.

The run (the whole middleware chain) executes in its own task and pushes events into the queue; the
consumer's async generator pulls them. When the consumer goes away early, ``finish`` marks the
stream abandoned and cancels only the agent's model stream, so the chain itself completes normally
with a ``cancelled`` result that middlewares can log and charge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any, Final

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage

from agent_runtime._jsonable import jsonable
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.monitoring.pricing import PriceTable
from agent_runtime.orchestration._errors import map_error
from agent_runtime.orchestration._results import estimate_tokens
from agent_runtime.types import GRAPH_EVENT_TYPES, AgentResult, StreamEvent, StreamEventType, Usage

__all__ = ["StreamControl", "run_streaming", "run_to_end"]

_QUEUE_SIZE = 256
_HELD_MAX = 64


def _id(event: StreamEvent) -> Any:
    return None if event.message is None else event.message.get("id")


class StreamControl:
    """Args:
    graph_events: also emit the graph's own events (``GRAPH_EVENT_TYPES``) and tokens' message metadata.
    """

    def __init__(self, *, graph_events: bool = False) -> None:
        self.graph_events = graph_events
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        self.abandoned = False
        self.emitted = False
        self.tokens = 0
        self.first_token_at: float | None = None
        self.error: AgentRuntimeError | None = None
        self.agent_task: asyncio.Task[Any] | None = None

    # -- producer side ------------------------------------------------------------------------------
    async def emit(self, event: StreamEvent) -> None:
        if self.abandoned:
            return
        if event.type == "token":
            self.tokens += 1
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
        await self.queue.put(("event", event))

    async def drive(self, run: Coroutine[Any, Any, AgentResult]) -> None:
        try:
            result = await run
        except Exception as exc:
            self.error = map_error(exc)
            await self._put_last(("error", self.error))
        else:
            await self._put_last(("final", result))

    async def _put_last(self, item: tuple[str, Any]) -> None:
        if not self.abandoned:
            await self.queue.put(item)

    # -- consumer side ------------------------------------------------------------------------------
    async def events(self, run_id: str, *, coalesce: bool = False) -> AsyncIterator[StreamEvent]:
        """The run's events in order. With ``coalesce`` the token events already waiting in the queue
        behind a token (of the same step and message) go out as one: a consumer that keeps up still
        gets every token alone, one that falls behind (a busy worker, a slow client) catches up in a few
        events instead of paying the per-event cost for each token. Nothing waits for more tokens.

        The graph's own events (``GRAPH_EVENT_TYPES``) that come before anything a client shows are
        held until it comes (a bounded few): a run that fails before it showed anything still ends
        with its error alone, so it is retried and its first event is that error, as before."""
        held: tuple[str, Any] | None = None
        early: list[StreamEvent] = []
        while True:
            kind, payload = held if held is not None else await self.queue.get()
            held = None
            if kind == "final":
                for event in early:
                    yield event
                yield StreamEvent(type="final", run_id=run_id, data=payload.model_dump(mode="json"))
                return
            if kind == "error":
                yield StreamEvent(type="error", run_id=run_id, data=payload.to_dict()["error"])
                return
            if not self.emitted and payload.type in GRAPH_EVENT_TYPES and len(early) < _HELD_MAX:
                early.append(payload)
                continue
            self.emitted = True
            for event in early:
                yield event
            early.clear()
            if coalesce and payload.type == "token" and not self.queue.empty():
                payload, held = self._merge_waiting_tokens(payload)
            yield payload

    def _merge_waiting_tokens(self, first: StreamEvent) -> tuple[StreamEvent, tuple[str, Any] | None]:
        parts = [first.text]
        while not self.queue.empty():
            item = self.queue.get_nowait()
            kind, event = item
            if kind != "event" or event.type != "token" or (event.step, _id(event)) != (first.step, _id(first)):
                return self._merged(first, parts), item
            parts.append(event.text)
        return self._merged(first, parts), None

    @staticmethod
    def _merged(first: StreamEvent, parts: list[str]) -> StreamEvent:
        if len(parts) == 1:
            return first
        return first.model_copy(update={"data": {**first.data, "text": "".join(parts), "tokens": len(parts)}})

    async def finish(self, task: asyncio.Task[None], *, abandon: bool = True) -> None:
        """Called when the consumer stops, normally or not: let the run end and wait for it (bounded).
        ``abandon=False``: cancel the run itself (the chain sees ``CancelledError``) instead."""
        if not task.done():
            self.abandoned = True
            if not abandon:
                task.cancel()
            elif self.agent_task is not None and not self.agent_task.done():
                self.agent_task.cancel()
            deadline = time.monotonic() + 30
            while not task.done() and time.monotonic() < deadline:
                while not self.queue.empty():
                    self.queue.get_nowait()
                await asyncio.wait({task}, timeout=0.05)
        if task.done() and not task.cancelled():
            task.exception()

    # -- accounting ---------------------------------------------------------------------------------
    def ttft_ms(self, started: float) -> float | None:
        return None if self.first_token_at is None else (self.first_token_at - started) * 1000

    def estimated_usage(self, text: str, model: str, prices: PriceTable) -> Usage:
        """Usage of a stream abandoned before the provider reported it: streamed tokens counted, input
        estimated from the input text."""
        input_tokens = estimate_tokens(text)
        return Usage(
            input_tokens=input_tokens,
            output_tokens=self.tokens,
            total_tokens=input_tokens + self.tokens,
            cost_usd=prices.cost(model, input_tokens, self.tokens),
        )


async def run_to_end(agent: Any, graph_input: Any, config: dict[str, Any], latest: dict[str, Any]) -> dict[str, Any]:
    """``agent.ainvoke`` as LangGraph itself runs it (values and updates streamed, interrupts under
    ``__interrupt__``), keeping the state after each step in ``latest["values"]``: when the run fails
    part way, the model calls it already made are still there to be charged."""
    interrupts: list[Any] = []
    async for mode, chunk in agent.astream(graph_input, config, stream_mode=["updates", "values"]):
        if mode == "values":
            if "values" not in latest:  # the state as the attempt starts: history and its own input
                latest["before"] = frozenset(getattr(m, "id", None) for m in chunk.get("messages") or ())
            latest["values"] = chunk
        elif isinstance(chunk, dict) and "__interrupt__" in chunk:
            interrupts.extend(chunk["__interrupt__"])
    values = latest.get("values")
    state = dict(values) if isinstance(values, dict) else {}
    if interrupts:
        state["__interrupt__"] = interrupts
    return state


async def run_streaming(
    agent: Any,
    graph_input: Any,
    run_id: str,
    config: dict[str, Any],
    control: StreamControl,
    *,
    workflow: bool = False,
    collected: list[BaseMessage] | None = None,
) -> tuple[list[BaseMessage], str, Any, list[dict[str, Any]] | None]:
    """Stream the agent, emitting events; return its new messages, the status, any interrupts and, for a
    workflow, its step records. ``graph_input`` is the human message or a ``Command(resume=...)``;
    ``collected`` receives the new messages as they come (what a failed run already spent)."""
    collected = [] if collected is None else collected
    interrupts: list[Any] = []
    steps: list[dict[str, Any]] | None = [] if workflow else None

    async def consume() -> None:
        graph = _GraphEvents(run_id, control)
        async for mode, data in agent.astream(graph_input, config, stream_mode=graph.modes):
            if mode == "messages":
                chunk, meta = data
                node = meta.get("langgraph_node") if isinstance(meta, dict) else None
                await graph.chunk(chunk, meta, node if node not in (None, "model") else None)
                continue
            if mode != "updates":
                await graph.emit(mode, data)
                continue
            for node, update in data.items():
                await graph.update(node, update)
                if node == "__interrupt__":
                    interrupts.extend(update)
                    continue
                for message in (update or {}).get("messages", []) if isinstance(update, dict) else []:
                    await _collect(message, collected, control, run_id)

    control.agent_task = asyncio.create_task(
        _consume_workflow(agent, graph_input, run_id, config, control, collected, interrupts, steps)
        if steps is not None
        else consume()
    )
    try:
        await control.agent_task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if control.abandoned and (current is None or not current.cancelling()):
            return collected, "cancelled", None, steps
        control.agent_task.cancel()
        raise
    return collected, "completed", interrupts or None, steps


async def _consume_workflow(
    agent: Any,
    graph_input: Any,
    run_id: str,
    config: dict[str, Any],
    control: StreamControl,
    collected: list[BaseMessage],
    interrupts: list[Any],
    steps: list[dict[str, Any]],
) -> None:
    """A workflow streams with ``subgraphs=True``: each step's agent runs as a subgraph whose namespace
    (``step:<task id>``) says which step a token or tool event comes from, live. The workflow's own
    updates carry the steps' messages (collected once) and their usage records."""
    seen: set[str] = set()
    graph = _GraphEvents(run_id, control)
    async for namespace, mode, data in agent.astream(graph_input, config, stream_mode=graph.modes, subgraphs=True):
        step = namespace[0].partition(":")[0] if namespace else None
        if mode == "messages":
            chunk, meta = data
            await graph.chunk(chunk, meta, step)
            continue
        if mode != "updates":
            if not namespace:
                await graph.emit(mode, data)
            continue
        for node, update in data.items():
            if not namespace:
                await graph.update(node, update)
            if node == "__interrupt__":
                if not namespace:
                    interrupts.extend(update)
                continue
            if not isinstance(update, dict):
                continue
            if not namespace:
                steps.extend(update.get("steps") or ())
            for message in update.get("messages") or ():
                if namespace:
                    await _announce(message, control, run_id, step, seen)
                elif isinstance(message, BaseMessage) and message.type != "remove":
                    collected.append(message)
                    await _announce(message, control, run_id, node, seen)


_MODES: Final = ["messages", "updates"]
_GRAPH_MODES: Final = ["messages", "updates", "values", "custom"]
_MESSAGE_META: Final = ("langgraph_", "ls_", "checkpoint_ns")
"""The keys of LangGraph's chunk metadata a token keeps (the graph's and the model's, not the run config's)."""


class _GraphEvents:
    """Tokens, and with ``control.graph_events`` the graph's own events: its state as the attempt
    starts, a mark at the end of every step, each node's update, the model chunks that are no text
    token, and what nodes wrote to the stream writer."""

    def __init__(self, run_id: str, control: StreamControl) -> None:
        self.run_id, self.control, self.enabled = run_id, control, control.graph_events
        self.modes = _GRAPH_MODES if self.enabled else _MODES
        self.started = False

    async def _emit(self, type: StreamEventType, data: dict[str, Any]) -> None:
        await self.control.emit(StreamEvent(type=type, run_id=self.run_id, data=data))

    async def chunk(self, chunk: Any, meta: Any, step: str | None) -> None:
        if not isinstance(chunk, AIMessageChunk):
            return
        text = chunk.content if isinstance(chunk.content, str) else ""
        if not self.enabled:
            if text:
                await self.control.emit(StreamEvent(type="token", run_id=self.run_id, data={"text": text}, step=step))
            return
        kept = (
            {k: jsonable(v) for k, v in meta.items() if k.startswith(_MESSAGE_META)} if isinstance(meta, dict) else {}
        )
        if not text:
            await self._emit("chunk", {"chunk": jsonable(chunk), "metadata": kept})
            return
        message: dict[str, Any] = {"id": chunk.id, "metadata": kept}
        if chunk.response_metadata:
            message["response_metadata"] = jsonable(chunk.response_metadata)
        if chunk.usage_metadata:
            message["usage_metadata"] = jsonable(chunk.usage_metadata)
        if chunk.chunk_position:
            message["chunk_position"] = chunk.chunk_position
        event = StreamEvent(type="token", run_id=self.run_id, data={"text": text}, step=step, message=message)
        await self.control.emit(event)

    async def emit(self, mode: str, data: Any) -> None:
        if mode == "values":
            first, self.started = not self.started, True
            await self._emit("state", {"values": jsonable(data)} if first else {})
        elif mode == "custom":
            await self._emit("custom", {"value": jsonable(data)})

    async def update(self, node: str, update: Any) -> None:
        if self.enabled:
            await self._emit("update", {"node": node, "update": jsonable(update)})


async def _collect(message: Any, collected: list[BaseMessage], control: StreamControl, run_id: str) -> None:
    if not isinstance(message, BaseMessage) or message.type == "remove":
        return
    collected.append(message)
    await _announce(message, control, run_id, None, None)


async def _announce(message: Any, control: StreamControl, run_id: str, step: str | None, seen: set[str] | None) -> None:
    """Emit the tool_call / tool_result events of one message (once per call id when ``seen`` is kept)."""
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            if seen is not None:
                if call.get("id") in seen:
                    continue
                seen.add(str(call.get("id")))
            data = {"id": call.get("id"), "name": call["name"], "args": call["args"]}
            await control.emit(StreamEvent(type="tool_call", run_id=run_id, data=data, step=step))
    elif isinstance(message, ToolMessage):
        if seen is not None:
            key = f"result:{message.tool_call_id}"
            if key in seen:
                return
            seen.add(key)
        data = {
            "id": message.tool_call_id,
            "name": message.name,
            "output": str(message.content)[:4000],
            "status": message.status,
        }
        await control.emit(StreamEvent(type="tool_result", run_id=run_id, data=data, step=step))
