"""Thread state and history through langgraph-sdk: read, update as a node, time travel, forks, status."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from tests.agent_protocol.core.conftest import APServer


async def _conversation(ap: APServer, turns: int = 2) -> str:
    thread = await ap.client().threads.create(graph_id="writer")
    for i in range(turns):
        ap.run(ap.alice, thread["thread_id"], f"line {i} about the moon")
    return str(thread["thread_id"])


async def test_state_of_a_conversation(ap: APServer) -> None:
    client = ap.client()
    thread_id = await _conversation(ap)
    state = await client.threads.get_state(thread_id)
    assert [m["content"] for m in state["values"]["messages"] if m["type"] == "human"] == [
        "line 0 about the moon",
        "line 1 about the moon",
    ]
    assert state["next"] == [] and state["tasks"] == [] and state["interrupts"] == []
    assert state["checkpoint"]["thread_id"] == thread_id and state["checkpoint"]["checkpoint_id"]
    assert state["parent_checkpoint"]["checkpoint_id"] != state["checkpoint"]["checkpoint_id"]
    assert state["created_at"] and state["metadata"]["step"] >= 1


async def test_empty_thread_has_empty_state(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create()
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"] == {} and state["next"] == [] and state["checkpoint"]["checkpoint_id"] is None
    assert await client.threads.get_history(thread["thread_id"]) == []


async def test_history_time_travel_and_checkpoint_reads(ap: APServer) -> None:
    client = ap.client()
    thread_id = await _conversation(ap)
    history = await client.threads.get_history(thread_id, limit=100)
    assert len(history) >= 2
    ids = [h["checkpoint"]["checkpoint_id"] for h in history]
    assert ids == sorted(ids, reverse=True)  # newest first (checkpoint ids are time-ordered)
    assert history[0]["values"] == (await client.threads.get_state(thread_id))["values"]
    older = next(h for h in history if len(h["values"].get("messages", [])) == 2)
    at = await client.threads.get_state(thread_id, checkpoint_id=older["checkpoint"]["checkpoint_id"])
    assert at["values"] == older["values"]
    by_ref = await client.threads.get_state(thread_id, checkpoint=older["checkpoint"])
    assert by_ref["checkpoint"] == older["checkpoint"]
    before = await client.threads.get_history(thread_id, before=ids[0], limit=1)
    assert [h["checkpoint"]["checkpoint_id"] for h in before] == [ids[1]]
    first_only = await client.threads.get_history(thread_id, limit=1)
    assert len(first_only) == 1
    with pytest.raises(NotFoundError):
        await client.threads.get_state(thread_id, checkpoint_id=str(uuid.uuid4()))


async def test_update_state_as_node_and_fork_from_a_checkpoint(ap: APServer) -> None:
    client = ap.client()
    thread_id = await _conversation(ap, turns=1)
    state = await client.threads.get_state(thread_id)
    updated = await client.threads.update_state(
        thread_id, {"messages": [{"type": "ai", "content": "an edited answer"}]}, as_node="model"
    )
    assert updated["checkpoint"]["thread_id"] == thread_id
    after = await client.threads.get_state(thread_id)
    assert after["checkpoint"]["checkpoint_id"] == updated["checkpoint"]["checkpoint_id"]
    assert after["values"]["messages"][-1]["content"] == "an edited answer"
    assert after["metadata"]["source"] == "update"
    # fork: an update on the earlier checkpoint branches from it, the edit above stays in its own branch
    fork = await client.threads.update_state(
        thread_id,
        {"messages": [{"type": "human", "content": "a forked question"}]},
        as_node="model",
        checkpoint_id=state["checkpoint"]["checkpoint_id"],
    )
    forked = await client.threads.get_state(thread_id, checkpoint_id=fork["checkpoint"]["checkpoint_id"])
    assert forked["parent_checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    contents = [m["content"] for m in forked["values"]["messages"]]
    assert "a forked question" in contents and "an edited answer" not in contents
    # the next run continues from the latest checkpoint (the fork)
    ap.run(ap.alice, thread_id, "after the fork")
    latest = (await client.threads.get_state(thread_id))["values"]["messages"]
    assert [m["content"] for m in latest if m["type"] == "human"][-2:] == ["a forked question", "after the fork"]


async def test_update_state_refusals(ap: APServer) -> None:
    client = ap.client()
    thread_id = await _conversation(ap, turns=1)
    with pytest.raises(UnprocessableEntityError) as info:
        await client.threads.update_state(thread_id, {"messages": []}, as_node="no_such_node")
    assert "as_node" in info.value.response.json()["error"]["message"]
    for values, named in (({"messages": 5}, "message"), ({"mood": "calm"}, "mood")):
        with pytest.raises(UnprocessableEntityError) as info:
            await client.threads.update_state(thread_id, values, as_node="model")
        assert named in info.value.response.json()["error"]["message"]
    bare = await client.threads.create()
    with pytest.raises(ConflictError):  # no graph yet to write through
        await client.threads.update_state(bare["thread_id"], {"messages": []})
    with pytest.raises(UnprocessableEntityError) as info:
        await client.threads.get_state(
            thread_id, checkpoint={"thread_id": thread_id, "checkpoint_ns": "sub", "checkpoint_id": None}
        )  # type: ignore[typeddict-item]
    assert "namespace" in info.value.response.json()["error"]["message"]
    with pytest.raises(UnprocessableEntityError) as info:
        await client.threads.get_history(thread_id, select=["values"])  # type: ignore[list-item]
    assert "select" in info.value.response.json()["error"]["message"]


async def test_interrupted_status_and_interrupts(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create(graph_id="gated")
    result = ap.run(ap.alice, thread["thread_id"], 'use calculator {"expression": "6*7"}', template="gated")
    assert result["status"] == "interrupted"
    got = await client.threads.get(thread["thread_id"])
    assert got["status"] == "interrupted"
    assert got["interrupts"] and all(items for items in got["interrupts"].values())
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] and state["interrupts"] and state["tasks"][0]["interrupts"]
    found = await client.threads.search(status="interrupted", limit=100)
    assert thread["thread_id"] in {t["thread_id"] for t in found}


@pytest.fixture
async def held(ap: APServer) -> AsyncIterator[tuple[str, str]]:
    """A thread whose run lock is held, as by a run in progress (in the server's own process)."""
    thread = await ap.client().threads.create(graph_id="writer")
    runtime = ap.live.runtime
    assert runtime is not None
    session = ap.live.call(runtime.sessions.get_session(thread["thread_id"], tenant="acme", user_id="alice"))
    release = asyncio.Event()
    started = asyncio.Event()
    loop = ap.live.loop
    assert loop is not None

    async def hold() -> None:
        async with runtime.sessions.lock(session.id, tenant=session.tenant, user_id=session.user_id):
            started.set()
            await release.wait()

    task = asyncio.run_coroutine_threadsafe(hold(), loop)
    ap.live.call(asyncio.wait_for(started.wait(), 10))
    yield thread["thread_id"], session.key
    loop.call_soon_threadsafe(release.set)
    task.result(10)


async def test_busy_while_a_run_holds_the_thread(ap: APServer, held: tuple[str, str]) -> None:
    client = ap.client()
    thread_id, _ = held
    assert (await client.threads.get(thread_id))["status"] == "busy"
    assert thread_id in {t["thread_id"] for t in await client.threads.search(status="busy", limit=100)}


async def test_busy_when_another_worker_holds_the_lease(ap: APServer) -> None:
    """Another worker's run shows only as the lease in the shared backend."""
    client = ap.client()
    thread = await client.threads.create()
    runtime = ap.live.runtime
    assert runtime is not None
    from agent_runtime.sessions.models import session_key

    lock_key = session_key("acme", thread["thread_id"], "alice")
    assert ap.live.call(runtime.sessions.store.acquire_lease(lock_key, "other-worker", 30.0))
    try:
        assert (await client.threads.get(thread["thread_id"]))["status"] == "busy"
    finally:
        ap.live.call(runtime.sessions.store.release_lease(lock_key, "other-worker"))
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"
