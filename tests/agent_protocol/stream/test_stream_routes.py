"""Streamed runs through the official ``langgraph-sdk`` client against a real server: each stream mode's
events (as LangGraph's server sends them), thread and stateless runs, interrupts, errors, bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError
from langgraph_sdk.schema import StreamPart

from tests.agent_protocol.core.conftest import APServer

CALC = {"messages": [{"role": "user", "content": "what is 17*23+4?"}]}
GATED = {"messages": [{"role": "user", "content": 'use calculator {"expression": "6*7"}'}]}


async def collect(client: LangGraphClient, thread_id: str | None, assistant: str, **kwargs: Any) -> list[StreamPart]:
    return [part async for part in client.runs.stream(thread_id, assistant, **kwargs)]


def named(parts: list[StreamPart], event: str) -> list[Any]:
    return [part.data for part in parts if part.event == event]


async def test_values_and_updates_on_a_thread(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create()
    parts = await collect(client, thread["thread_id"], "analyst", input=CALC, stream_mode=["values", "updates"])
    assert parts[0].event == "metadata" and parts[0].data["attempt"] == 1
    run_id = parts[0].data["run_id"]
    assert {p.event for p in parts[1:]} == {"values", "updates"} and all(p.id for p in parts[1:])
    nodes = [node for update in named(parts, "updates") for node in update if not node.endswith("before_model")]
    assert nodes == ["model", "tools", "model"]
    values = named(parts, "values")
    assert [m["type"] for m in values[0]["messages"]] == ["human"]
    assert [m["type"] for m in values[-1]["messages"]] == ["human", "ai", "tool", "ai"]
    state = await client.threads.get_state(thread["thread_id"])
    assert values[-1] == state["values"]  # the stream's last values are the thread's state
    run = await client.runs.get(thread["thread_id"], run_id)
    assert run["status"] == "success" and run["kwargs"]["stream_mode"] == ["values", "updates"]


async def test_a_second_turn_streams_the_whole_thread(ap_sqlite: APServer) -> None:
    client = ap_sqlite.client()
    thread = await client.threads.create()
    await collect(client, thread["thread_id"], "writer", input={"messages": [{"role": "user", "content": "hi"}]})
    parts = await collect(
        client, thread["thread_id"], "writer", input={"messages": [{"role": "user", "content": "more"}]}
    )
    first, last = named(parts, "values")[0], named(parts, "values")[-1]  # default mode: values
    assert [m["type"] for m in first["messages"]] == ["human", "ai", "human"]
    assert [m["type"] for m in last["messages"]] == ["human", "ai", "human", "ai"]


async def test_messages_tuple(ap_sqlite: APServer) -> None:
    client = ap_sqlite.client()
    thread = await client.threads.create()
    parts = await collect(client, thread["thread_id"], "analyst", input=CALC, stream_mode="messages-tuple")
    assert {p.event for p in parts[1:]} == {"messages"}
    pairs = named(parts, "messages")
    chunks = [chunk for chunk, _ in pairs if chunk["type"] == "AIMessageChunk"]
    (tool,) = [(chunk, meta) for chunk, meta in pairs if chunk["type"] == "tool"]
    assert tool[0]["content"] == "395" and tool[1]["langgraph_node"] == "tools"
    meta = pairs[0][1]
    assert meta["thread_id"] == thread["thread_id"] and meta["graph_id"] == "analyst" and meta["run_attempt"] == 1
    answer = "".join(c["content"] for c in chunks if c["id"] == chunks[-1]["id"])
    state = await client.threads.get_state(thread["thread_id"])
    assert answer == state["values"]["messages"][-1]["content"]


async def test_messages_partial_and_complete(ap_sqlite: APServer) -> None:
    client = ap_sqlite.client()
    parts = await collect(client, None, "analyst", input=CALC, stream_mode="messages")  # stateless
    assert {p.event for p in parts[1:]} == {"messages/metadata", "messages/partial", "messages/complete"}
    partial = named(parts, "messages/partial")[-1][0]
    assert partial["type"] == "ai" and "395" in partial["content"]
    (complete,) = named(parts, "messages/complete")
    assert complete[0]["type"] == "tool" and complete[0]["content"] == "395"


async def test_interrupt_in_values_and_updates_then_resume_streamed(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create()
    parts = await collect(client, thread["thread_id"], "gated", input=GATED, stream_mode=["values", "updates"])
    pause = [u["__interrupt__"] for u in named(parts, "updates") if "__interrupt__" in u]
    assert pause and pause[0][0]["value"]["action_requests"][0]["name"] == "calculator"
    assert named(parts, "values")[-1]["__interrupt__"] == pause[0]
    resumed = await collect(
        client, thread["thread_id"], "gated", command={"resume": {"decisions": [{"type": "approve"}]}}
    )
    last = named(resumed, "values")[-1]
    assert "__interrupt__" not in last and "42" in next(m for m in last["messages"] if m["type"] == "tool")["content"]


async def test_a_failed_run_ends_with_an_error_event(ap_streaming: APServer) -> None:
    client = ap_streaming.client()
    thread = await client.threads.create()
    long = {"messages": [{"role": "user", "content": "a long story about the sea"}]}
    parts = await collect(client, thread["thread_id"], "hasty", input=long, stream_mode="updates")
    assert parts[-1].event == "error" and parts[-1].data["error"] == "timeout" and parts[-1].data["message"]
    assert (await client.threads.get(thread["thread_id"]))["status"] == "error"


@pytest.mark.parametrize("mode", ["events", "debug", "tasks", "checkpoints"])
async def test_modes_not_streamed_are_refused_by_name(ap_sqlite: APServer, mode: str) -> None:
    client = ap_sqlite.client()
    thread = await client.threads.create()
    with pytest.raises(UnprocessableEntityError, match=mode):
        await collect(client, thread["thread_id"], "writer", input=CALC, stream_mode=["values", mode])
    assert await client.runs.list(thread["thread_id"]) == []  # refused before anything was queued


async def test_bad_requests(ap_sqlite: APServer) -> None:
    client = ap_sqlite.client()
    with pytest.raises(NotFoundError):
        await collect(client, "00000000-0000-0000-0000-000000000000", "writer", input=CALC)
    with pytest.raises(NotFoundError):
        await collect(client, None, "no-such-assistant", input=CALC)
    with pytest.raises(UnprocessableEntityError, match="debug"):
        await collect(client, None, "writer", input=CALC, stream_mode=["values", "debug"])
    parts = await collect(client, None, "writer", input=CALC, stream_subgraphs=True)  # no subgraphs: the same
    assert parts[0].event == "metadata" and parts[-1].event == "values"
    raw = httpx.post(
        f"{ap_sqlite.url}/runs/stream",
        json={"assistant_id": "writer", "input": CALC, "stream_mode": "nope"},
        headers={"x-api-key": ap_sqlite.alice},
    )
    assert raw.status_code == 422 and "stream_mode" in raw.text


async def test_busy_thread_is_409_before_the_stream(ap_streaming: APServer) -> None:
    client = ap_streaming.client()
    thread = await client.threads.create()
    long = {"messages": [{"role": "user", "content": "tell me a long story about the sea and the moon"}]}
    stream = client.runs.stream(thread["thread_id"], "writer", input=long, stream_mode="updates")
    first = await anext(stream)
    assert first.event == "metadata"
    with pytest.raises(ConflictError):
        await collect(client, thread["thread_id"], "writer", input=CALC)
    await stream.aclose()
    await client.runs.cancel(thread["thread_id"], first.data["run_id"], wait=True)


def test_wire_framing_as_langgraph_sends_it(ap_sqlite: APServer) -> None:
    body = {
        "assistant_id": "writer",
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "stream_mode": "updates",
    }
    with httpx.stream("POST", f"{ap_sqlite.url}/runs/stream", json=body, headers={"x-api-key": ap_sqlite.alice}) as r:
        raw = r.read()
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        run_id = r.headers["x-run-id"]
        assert r.headers["location"].endswith(f"/runs/{run_id}/stream") and r.headers["content-location"]
    assert raw.startswith(b'event: metadata\r\ndata: {"run_id":"' + run_id.encode() + b'","attempt":1}\r\n\r\n')
    assert b"event: updates\r\ndata: {" in raw and b"\r\nid: " in raw and b"\n\n" not in raw.replace(b"\r\n", b"")
