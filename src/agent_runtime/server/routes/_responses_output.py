"""A run's answer as a Responses API ``response`` object, and as its stream of typed events.

The stream follows OpenAI's sequence, each event with its ``sequence_number``: ``response.created``,
``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``..., ``response.output_text.done``, ``response.content_part.done``,
``response.output_item.done``, then ``response.completed`` (``response.incomplete`` when
``max_output_tokens`` cut the answer, ``response.failed`` when the run failed).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agent_runtime.errors import AgentRuntimeError, BadRequestError
from agent_runtime.server.routes._openai_request import paused_error
from agent_runtime.server.routes.runs import aclose, error_from_event
from agent_runtime.server.schemas_responses import ResponseCreateRequest
from agent_runtime.server.sse import sse_event
from agent_runtime.types import AgentResult, ChatTurn, StreamEvent

__all__ = ["ResponseDraft", "input_items", "item_page", "response_events"]

OnDone = Callable[[dict[str, Any], AgentResult, str], Awaitable[None]]
"""Called with the finished response object, the run's result and the answer's text, before it is sent."""


def _usage(result: AgentResult) -> dict[str, Any]:
    usage = result.usage
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _error(error: AgentRuntimeError) -> dict[str, Any]:
    return {"error": {"code": error.code, "message": error.message}}


@dataclass
class ResponseDraft:
    """What a response object says whatever its state: ids, creation time and the request's echo."""

    id: str
    body: ResponseCreateRequest
    created_at: int = field(default_factory=lambda: int(time.time()))

    @classmethod
    def for_run(cls, run_id: str, body: ResponseCreateRequest) -> ResponseDraft:
        """The response id shares the run's (``resp_<hex>`` for ``run_<hex>``), so the run record is findable."""
        return cls("resp_" + run_id.removeprefix("run_"), body)

    @property
    def message_id(self) -> str:
        return "msg_" + self.id.removeprefix("resp_")

    def message(self, text: str, status: str) -> dict[str, Any]:
        content = [self.part(text)] if status != "in_progress" else []
        return {"type": "message", "id": self.message_id, "status": status, "role": "assistant", "content": content}

    @staticmethod
    def part(text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def object(self, status: str, **fields: Any) -> dict[str, Any]:
        body = self.body
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": None,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "metadata": body.metadata or {},
            "model": body.model,
            "output": [],
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": body.previous_response_id,
            "store": body.store,
            "temperature": body.temperature,
            "top_p": body.top_p,
            "text": {"format": {"type": "text"}},
            "tool_choice": body.tool_choice or "auto",
            "tools": [],
            "truncation": "disabled",
            "background": False,
            "usage": None,
            "user": body.user,
            **fields,
        }

    def finished(self, result: AgentResult, text: str) -> dict[str, Any]:
        """The object of a finished run: ``incomplete`` when ``max_output_tokens`` cut its answer."""
        cut = result.metadata.get("finish_reason") == "length"
        status = "incomplete" if cut else "completed"
        return self.object(
            status,
            completed_at=int(time.time()),
            incomplete_details={"reason": "max_output_tokens"} if cut else None,
            output=[self.message(text, status)],
            usage=_usage(result),
        )

    def failed(self, error: AgentRuntimeError) -> dict[str, Any]:
        return self.object("failed", **_error(error))


class _Sequence:
    """Numbers the events of one stream, as OpenAI does, from 0."""

    def __init__(self) -> None:
        self.next = 0

    def event(self, type: str, **data: Any) -> bytes:
        number, self.next = self.next, self.next + 1
        return sse_event(type, {"type": type, "sequence_number": number, **data})

    def delta(self, draft: ResponseDraft, text: str) -> bytes:
        item = {"item_id": draft.message_id, "output_index": 0, "content_index": 0}
        return self.event("response.output_text.delta", **item, delta=text, logprobs=[])


async def response_events(
    draft: ResponseDraft,
    first: StreamEvent,
    stream: AsyncIterator[StreamEvent],
    on_done: OnDone,
    *,
    final_only: bool,
) -> AsyncIterator[bytes]:
    """The run's events as Responses API events. ``final_only`` (a workflow): the steps' tokens are not
    the answer, the final output is; it is sent as one delta, so the stream says what the JSON does."""
    seq = _Sequence()
    item = {"item_id": draft.message_id, "output_index": 0}
    texts: list[str] = []
    try:
        yield seq.event("response.created", response=draft.object("in_progress"))
        yield seq.event("response.in_progress", response=draft.object("in_progress"))
        yield seq.event("response.output_item.added", output_index=0, item=draft.message("", "in_progress"))
        yield seq.event("response.content_part.added", **item, content_index=0, part=draft.part(""))
        event: StreamEvent | None = first
        while event is not None:
            if event.type == "token" and not final_only and event.text:
                texts.append(event.text)
                yield seq.delta(draft, event.text)
            elif event.type == "final":
                result = AgentResult.model_validate(event.data)
                if result.status == "interrupted":
                    yield seq.event("response.failed", response=draft.failed(paused_error(result)))
                    break
                if final_only and result.output:
                    texts.append(result.output)
                    yield seq.delta(draft, result.output)
                async for done in _done(draft, seq, result, "".join(texts), on_done):
                    yield done
            elif event.type == "error":
                yield seq.event("response.failed", response=draft.failed(error_from_event(event.data)))
            event = await anext(stream, None)
    finally:
        await aclose(stream)


async def _done(
    draft: ResponseDraft, seq: _Sequence, result: AgentResult, text: str, on_done: OnDone
) -> AsyncIterator[bytes]:
    item = {"item_id": draft.message_id, "output_index": 0}
    response = draft.finished(result, text)
    yield seq.event("response.output_text.done", **item, content_index=0, text=text, logprobs=[])
    yield seq.event("response.content_part.done", **item, content_index=0, part=draft.part(text))
    yield seq.event("response.output_item.done", output_index=0, item=response["output"][0])
    try:  # stored before the client hears it is done, so that it can continue from it at once
        await on_done(response, result, text)
    except AgentRuntimeError as exc:  # a store that failed: the answer was given, but cannot be continued
        yield seq.event("response.failed", response={**response, "status": "failed", **_error(exc)})
        return
    yield seq.event(f"response.{response['status']}", response=response)


def input_items(response_id: str, turns: list[ChatTurn]) -> list[dict[str, Any]]:
    """A response's own input turns as Responses API message items, oldest first."""
    stem = "msg_" + response_id.removeprefix("resp_")
    items = []
    for index, turn in enumerate(turns):
        answer = turn.role == "assistant"
        part = ResponseDraft.part(turn.content) if answer else {"type": "input_text", "text": turn.content}
        item = {"id": f"{stem}_in{index}", "type": "message", "role": turn.role, "status": "completed"}
        items.append({**item, "content": [part]})
    return items


def item_page(items: list[dict[str, Any]], *, after: str | None, limit: int, order: str) -> dict[str, Any]:
    """One page of ``items`` in ``order``, starting after the item ``after`` (a 400 if it is not one of them)."""
    ordered = items if order == "asc" else items[::-1]
    start = 0
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise BadRequestError(f"no input item {after!r} in this response", details={"param": "after"})
        start = ids.index(after) + 1
    data = ordered[start : start + limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": start + limit < len(ordered),
    }
