"""Leaving and joining streamed runs through the official ``langgraph-sdk`` client: a client that goes
away and comes back with ``Last-Event-ID`` gets the rest exactly once; ``on_disconnect`` and
``cancel_on_disconnect`` both ways; joins of background runs; 410, 404 and 422 on a join."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamPart

from tests.agent_protocol.core.conftest import APServer
from tests.helpers import until

LONG = {"messages": [{"role": "user", "content": "write a long poem about the sea and the moon"}]}


async def head(stream: AsyncIterator[StreamPart], count: int) -> list[StreamPart]:
    """The first ``count`` parts, then the client goes away (the response is closed)."""
    parts: list[StreamPart] = []
    async for part in stream:
        parts.append(part)
        if len(parts) >= count:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    return parts


async def status(client: LangGraphClient, thread_id: str, run_id: str) -> str:
    return str((await client.runs.get(thread_id, run_id))["status"])


def tokens(parts: list[StreamPart]) -> str:
    return "".join(
        p.data[0]["content"] for p in parts if p.event == "messages" and p.data[0]["type"] == "AIMessageChunk"
    )


async def test_leave_then_rejoin_after_the_last_event_id(ap_streaming: APServer) -> None:
    client = ap_streaming.client()
    thread_id = (await client.threads.create())["thread_id"]
    stream = client.runs.stream(thread_id, "writer", input=LONG, stream_mode="messages-tuple")
    first = await head(stream, 4)
    assert first[0].event == "metadata" and first[0].id is None and all(p.id for p in first[1:])
    run_id = first[0].data["run_id"]
    assert await status(client, thread_id, run_id) in ("pending", "running")  # on_disconnect continue
    rest = [p async for p in client.runs.join_stream(thread_id, run_id, last_event_id=first[-1].id)]
    assert rest and rest[0].event == "messages" and first[-1].id not in {p.id for p in rest}
    ids = [p.id for p in first[1:] + rest]
    assert len(ids) == len(set(ids))  # nothing twice
    state = await client.threads.get_state(thread_id)
    assert tokens(first + rest) == state["values"]["messages"][-1]["content"]
    assert await status(client, thread_id, run_id) == "success"


async def test_on_disconnect_cancel_cancels_the_run(ap_streaming: APServer) -> None:
    client = ap_streaming.client()
    thread_id = (await client.threads.create())["thread_id"]
    stream = client.runs.stream(thread_id, "writer", input=LONG, stream_mode="messages-tuple", on_disconnect="cancel")
    run_id = (await head(stream, 3))[0].data["run_id"]

    async def cancelled() -> bool:
        run = await client.runs.get(thread_id, run_id)
        return run["status"] == "interrupted" and run.get("cancel_reason") == "cancelled"

    await until(cancelled, "the run to be cancelled", timeout=30)


async def test_join_a_background_run_in_its_own_modes(ap: APServer) -> None:
    client = ap.client()
    thread_id = (await client.threads.create())["thread_id"]
    hello = {"messages": [{"role": "user", "content": "hello there"}]}
    run = await client.runs.create(thread_id, "writer", input=hello, stream_mode=["updates", "values"])
    joined = [p async for p in client.runs.join_stream(thread_id, run["run_id"])]
    assert joined[0].event == "metadata" and joined[0].data["run_id"] == run["run_id"]
    assert {p.event for p in joined[1:]} == {"updates", "values"}
    assert [m["type"] for m in [p for p in joined if p.event == "values"][-1].data["messages"]] == ["human", "ai"]
    assert await status(client, thread_id, run["run_id"]) == "success"
    again = [p async for p in client.runs.join_stream(thread_id, run["run_id"], stream_mode="updates")]
    assert {p.event for p in again[1:]} == {"updates"}  # a finished run is replayed, in the modes asked
    after_last = [p async for p in client.runs.join_stream(thread_id, run["run_id"], last_event_id=joined[-1].id)]
    assert after_last == []


async def test_join_with_cancel_on_disconnect(ap_streaming: APServer) -> None:
    client = ap_streaming.client()
    thread_id = (await client.threads.create())["thread_id"]
    run = await client.runs.create(thread_id, "writer", input=LONG, stream_mode="messages-tuple")
    joined = client.runs.join_stream(thread_id, run["run_id"], cancel_on_disconnect=True)
    assert (await head(joined, 3))[0].event == "metadata"
    await until(lambda: _is(client, thread_id, run["run_id"], "interrupted"), "the cancel", timeout=30)


async def test_join_without_cancel_leaves_the_run_going(ap_streaming: APServer) -> None:
    client = ap_streaming.client()
    thread_id = (await client.threads.create())["thread_id"]
    run = await client.runs.create(thread_id, "writer", input=LONG, stream_mode="messages-tuple")
    await head(client.runs.join_stream(thread_id, run["run_id"]), 3)
    assert await client.runs.join(thread_id, run["run_id"])  # it ran to its end
    assert await status(client, thread_id, run["run_id"]) == "success"


async def _is(client: LangGraphClient, thread_id: str, run_id: str, wanted: str) -> bool:
    return await status(client, thread_id, run_id) == wanted


def _get(ap: APServer, path: str, key: str, **headers: Any) -> httpx.Response:
    return httpx.get(f"{ap.url}{path}", headers={"x-api-key": key, **headers}, timeout=30)


async def test_410_404_422_on_a_join(ap_streaming: APServer) -> None:
    client = ap_streaming.client()
    thread_id = (await client.threads.create())["thread_id"]
    words = " ".join(f"word{i}" for i in range(50))  # the writer answers with them: more than 30 events
    story = {"messages": [{"role": "user", "content": f"a story with {words}"}]}
    run = await client.runs.create(thread_id, "writer", input=story, stream_mode="updates")
    await client.runs.join(thread_id, run["run_id"])
    path = f"/threads/{thread_id}/runs/{run['run_id']}/stream"
    assert _get(ap_streaming, path, ap_streaming.alice).status_code == 200
    gone = _get(ap_streaming, path, ap_streaming.alice, **{"Last-Event-ID": "1"})  # 30 kept, more streamed
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "events_expired", gone.text
    for key in (ap_streaming.bob, ap_streaming.eve):  # another user, another tenant: unknown
        assert _get(ap_streaming, path, key).status_code == 404
    unknown = f"/threads/{thread_id}/runs/run_{'0' * 32}/stream"
    assert _get(ap_streaming, unknown, ap_streaming.alice).status_code == 404
    refused = _get(ap_streaming, path + "?stream_mode=events", ap_streaming.alice)
    assert refused.status_code == 422 and "events" in refused.text
    assert _get(ap_streaming, path + "?bogus=1", ap_streaming.alice).status_code == 422


@pytest.mark.parametrize("mode", ["updates", "values"])
async def test_a_run_joined_live_from_a_second_client(ap_streaming: APServer, mode: str) -> None:
    client = ap_streaming.client()
    thread_id = (await client.threads.create())["thread_id"]
    stream = client.runs.stream(thread_id, "writer", input=LONG, stream_mode=mode)
    metadata = await anext(stream)
    other = [p async for p in ap_streaming.client().runs.join_stream(thread_id, metadata.data["run_id"])]
    mine = [metadata] + [p async for p in stream]
    assert [(p.event, p.data) for p in other] == [(p.event, p.data) for p in mine]  # the same stream
