"""``_stream_modes``: a real run's events (the executor with the offline model and a real tool call)
shaped per stream mode as LangGraph's server sends them (names and payloads as measured on its wire)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, ToolMessage

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import ValidationError
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.server.routes.agent_protocol._stream_modes import (
    RunInfo,
    StreamShaper,
    merge_messages,
    stream_modes,
)
from agent_runtime.types import GRAPH_EVENT_TYPES, AgentContext, StreamEvent

RUN = RunInfo(run_id="run_1", assistant_id="a-1", graph_id="analyst", thread_id="t-1")


async def run_events(text: str = "what is 17*23+4?", template: str = "analyst") -> list[StreamEvent]:
    executor = AgentExecutor(AgentFactory())
    context = AgentContext(input=text, template=template, graph_events=True, run_id="run_1")
    return [event async for event in executor.execute_stream(context)]


def shape(events: list[StreamEvent], *modes: str) -> list[tuple[str, Any]]:
    shaper = StreamShaper(stream_modes(list(modes)), RUN)
    parts = [shaper.start()]
    for event in events:
        parts.extend(shaper.shape(event))
    return parts


@pytest.fixture
async def events() -> list[StreamEvent]:
    return await run_events()


async def test_the_core_streams_graph_events_only_when_asked() -> None:
    executor = AgentExecutor(AgentFactory())
    plain = [e async for e in executor.execute_stream(AgentContext(input="what is 2+2?", template="analyst"))]
    assert not {e.type for e in plain} & GRAPH_EVENT_TYPES and all(e.message is None for e in plain)
    graph = await run_events("what is 2+2?")
    assert {"state", "update"} <= {e.type for e in graph}
    assert [e.type for e in graph if e.type not in GRAPH_EVENT_TYPES] == [e.type for e in plain]
    token = next(e for e in graph if e.type == "token")
    assert token.message is not None and token.message["metadata"]["langgraph_node"] == "model"


async def test_metadata_first_then_updates_per_node(events: list[StreamEvent]) -> None:
    parts = shape(events, "updates")
    assert parts[0] == ("metadata", {"run_id": "run_1", "attempt": 1})
    assert {name for name, _ in parts[1:]} == {"updates"}
    nodes = [next(iter(data)) for _, data in parts[1:]]
    assert nodes == ["model", "tools", "model"]
    ai, tool, answer = (data[node]["messages"][0] for (_, data), node in zip(parts[1:], nodes, strict=True))
    assert ai["type"] == "ai" and ai["tool_calls"][0]["name"] == "calculator" and ai["id"]
    assert tool["type"] == "tool" and tool["content"] == "395" and tool["tool_call_id"] == ai["tool_calls"][0]["id"]
    assert answer["content"] == events[-1].data["output"]
    assert set(tool) == set(ToolMessage(content="", tool_call_id="x").model_dump())  # LangChain's own dict


async def test_values_after_every_step(events: list[StreamEvent]) -> None:
    parts = shape(events, "values")
    values = [data for name, data in parts if name == "values"]
    kinds = [[m["type"] for m in v["messages"]] for v in values]
    assert kinds == [["human"], ["human", "ai"], ["human", "ai", "tool"], ["human", "ai", "tool", "ai"]]
    assert values[0]["messages"][0]["content"] == "what is 17*23+4?"
    assert values[-1]["messages"][-1]["content"] == events[-1].data["output"]


async def test_messages_tuple_chunks_and_whole_tool_results(events: list[StreamEvent]) -> None:
    parts = shape(events, "messages-tuple")
    assert {name for name, _ in parts[1:]} == {"messages"}
    pairs = [data for _, data in parts[1:]]
    chunks = [chunk for chunk, _ in pairs if chunk["type"] == "AIMessageChunk"]
    tools = [(chunk, meta) for chunk, meta in pairs if chunk["type"] == "tool"]
    assert len(tools) == 1 and tools[0][0]["content"] == "395" and tools[0][1]["langgraph_node"] == "tools"
    assert list(chunks[0]) == list(AIMessageChunk(content="x").model_dump())  # LangChain's keys, in order
    answer_id = chunks[-1]["id"]
    text = "".join(c["content"] for c in chunks if c["id"] == answer_id)
    assert text == events[-1].data["output"] and chunks[-1]["chunk_position"] == "last"
    assert chunks[-1]["usage_metadata"]["output_tokens"] > 0
    meta = pairs[0][1]
    assert meta["langgraph_node"] == "model" and meta["run_id"] == "run_1" and meta["thread_id"] == "t-1"
    assert meta["graph_id"] == "analyst" and meta["assistant_id"] == "a-1" and "langgraph_step" in meta
    tool_call = [c for c in chunks if c["tool_call_chunks"]]
    assert tool_call and tool_call[0]["content"] == ""  # the call's arguments stream as chunks too


async def test_messages_metadata_partial_and_complete(events: list[StreamEvent]) -> None:
    parts = shape(events, "messages")
    names = [name for name, _ in parts[1:]]
    assert set(names) == {"messages/metadata", "messages/partial", "messages/complete"}
    metadata_ids = [next(iter(data)) for name, data in parts if name == "messages/metadata"]
    assert len(metadata_ids) == len(set(metadata_ids)) == 3  # the call, the tool result, the answer
    partials = [data[0] for name, data in parts if name == "messages/partial"]
    assert partials[-1]["content"] == events[-1].data["output"] and partials[-1]["type"] == "ai"
    assert [len(p["content"]) for p in partials if p["id"] == partials[-1]["id"]] == sorted(
        len(p["content"]) for p in partials if p["id"] == partials[-1]["id"]
    )  # each partial is the message so far
    call = next(p for p in reversed(partials) if p["tool_calls"])
    assert call["tool_calls"][0]["args"] == {"expression": "17*23+4"}  # the arguments' chunks, parsed
    (complete,) = [data[0] for name, data in parts if name == "messages/complete"]
    assert complete["type"] == "tool" and complete["content"] == "395"


async def test_both_message_modes_send_the_tuples_only(events: list[StreamEvent]) -> None:
    assert {name for name, _ in shape(events, "messages", "messages-tuple")[1:]} == {"messages"}


def test_custom_and_error_parts() -> None:
    shaper = StreamShaper(("custom", "updates"), RUN)
    custom = StreamEvent(type="custom", run_id="run_1", data={"value": {"progress": 1}})
    assert shaper.shape(custom) == [("custom", {"progress": 1})]
    error = StreamEvent(type="error", run_id="run_1", data={"code": "run_timeout", "message": "too slow"})
    assert shaper.shape(error) == [("error", {"error": "run_timeout", "message": "too slow"})]
    assert StreamShaper(("values",), RUN).shape(custom) == []


def test_values_carry_a_pause_and_follow_removals() -> None:
    shaper = StreamShaper(("values", "updates"), RUN)
    human = {"type": "human", "id": "h1", "content": "hi"}
    assert shaper.shape(StreamEvent(type="state", run_id="r", data={"values": {"messages": [human]}})) == [
        ("values", {"messages": [human]})
    ]
    pause = [{"value": {"question": "ok?"}, "id": "i1"}]
    update = StreamEvent(type="update", run_id="r", data={"node": "__interrupt__", "update": pause})
    assert shaper.shape(update) == [("updates", {"__interrupt__": pause})]
    assert shaper.shape(StreamEvent(type="state", run_id="r", data={})) == [
        ("values", {"messages": [human], "__interrupt__": pause})
    ]


def test_merge_messages_is_add_messages() -> None:
    a, b = {"type": "human", "id": "1", "content": "a"}, {"type": "ai", "id": "2", "content": "b"}
    edited = {"type": "ai", "id": "2", "content": "B"}
    assert merge_messages([a, b], [edited]) == [a, edited]
    assert merge_messages([a, b], [{"type": "remove", "id": "1"}]) == [b]
    assert merge_messages([a, b], [{"type": "remove", "id": "__remove_all__"}, edited]) == [edited]
    assert merge_messages([a], {"role": "ai", "content": "raw"}) == [a, {"role": "ai", "content": "raw"}]


@pytest.mark.parametrize("mode", ["events", "debug", "tasks", "checkpoints", "tools", "lifecycle", "nope"])
def test_modes_that_are_not_streamed_are_refused_by_name(mode: str) -> None:
    with pytest.raises(ValidationError, match=repr(mode)) as caught:
        stream_modes(["values", mode])
    assert caught.value.details["field"] == "stream_mode"


def test_default_and_repeated_modes() -> None:
    assert stream_modes(None) == ("values",)
    assert stream_modes("updates") == ("updates",)
    assert stream_modes(["updates", "values", "updates"]) == ("updates", "values")


async def test_a_workflow_streams_its_own_steps() -> None:
    events = await run_events("a report on tides", template="research_report")
    parts = shape(events, "updates", "values", "messages-tuple")
    nodes = [node for name, data in parts if name == "updates" for node in data]
    assert nodes and not any(node.startswith("step:") for node in nodes)  # the workflow's nodes, not its steps'
    values = [data for name, data in parts if name == "values"]
    assert values and values[-1]["messages"][-1]["content"] == events[-1].data["output"]
    tokens = [data for name, data in parts if name == "messages"]
    assert tokens and all(meta["run_id"] == "run_1" for _, meta in tokens)
