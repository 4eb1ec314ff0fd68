"""Threads = sessions: create, read, update, delete, search, copy, with the official langgraph-sdk."""

from __future__ import annotations

import uuid

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from tests.agent_protocol.core.conftest import APServer, bound


async def test_create_get_patch_delete(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create(metadata={"topic": "poems"})
    uuid.UUID(thread["thread_id"])  # generated ids are UUIDs, like LangGraph's
    assert thread["status"] == "idle" and thread["metadata"] == {"topic": "poems"} and thread["values"] == {}
    got = await client.threads.get(thread["thread_id"])
    assert got["thread_id"] == thread["thread_id"] and got["created_at"] == thread["created_at"]
    patched = await client.threads.update(thread["thread_id"], metadata={"mood": "calm"})
    assert patched["metadata"] == {"topic": "poems", "mood": "calm"}
    await client.threads.delete(thread["thread_id"])
    with pytest.raises(NotFoundError):
        await client.threads.get(thread["thread_id"])
    with pytest.raises(NotFoundError):
        await client.threads.delete(thread["thread_id"])


async def test_if_exists_raise_or_do_nothing(ap: APServer) -> None:
    client = ap.client()
    thread_id = str(uuid.uuid4())
    first = await client.threads.create(thread_id=thread_id, metadata={"n": 1})
    assert first["thread_id"] == thread_id
    with pytest.raises(ConflictError):
        await client.threads.create(thread_id=thread_id)
    again = await client.threads.create(thread_id=thread_id, if_exists="do_nothing", metadata={"n": 2})
    assert again["metadata"] == {"n": 1}


async def test_thread_is_the_session_of_v1(ap: APServer) -> None:
    """A conversation started through /threads continues through /v1/runs, and shows in both APIs."""
    client = ap.client()
    thread = await client.threads.create(graph_id="writer")
    ap.run(ap.alice, thread["thread_id"], "write a haiku about rain")
    session = httpx.get(
        f"{ap.url}/v1/sessions/{thread['thread_id']}", headers={"Authorization": f"Bearer {ap.alice}"}
    ).json()
    assert session["id"] == thread["thread_id"] and session["message_count"] == 2
    got = await client.threads.get(thread["thread_id"])
    messages = got["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"]
    assert messages[0]["content"] == "write a haiku about rain"
    assert got["status"] == "idle" and got["metadata"]["graph_id"] == "writer"


async def test_search_by_metadata_status_and_pages(ap: APServer) -> None:
    client = ap.client(ap.bob)
    tag = uuid.uuid4().hex
    made = [await client.threads.create(metadata={"tag": tag, "i": i}) for i in range(5)]
    found = await client.threads.search(metadata={"tag": tag}, limit=10)
    assert {t["thread_id"] for t in found} == {t["thread_id"] for t in made}
    assert [t["metadata"]["i"] for t in found] == [4, 3, 2, 1, 0]  # newest first
    oldest = await client.threads.search(metadata={"tag": tag}, sort_by="created_at", sort_order="asc", limit=2)
    assert [t["metadata"]["i"] for t in oldest] == [0, 1]
    page = await client.threads.search(metadata={"tag": tag}, limit=2, offset=2)
    assert [t["metadata"]["i"] for t in page] == [2, 1]
    idle = await client.threads.search(metadata={"tag": tag}, status="idle", limit=10)
    assert len(idle) == 5
    assert await client.threads.search(metadata={"tag": tag}, status="busy") == []
    assert await client.threads.count(metadata={"tag": tag}) == 5
    some = await client.threads.search(ids=[made[1]["thread_id"], made[3]["thread_id"]])
    assert {t["metadata"]["i"] for t in some} == {1, 3}


async def test_copy_keeps_state_and_history(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create(graph_id="writer", metadata={"kind": "original"})
    ap.run(ap.alice, thread["thread_id"], "a line about the sea")
    copied = await client.threads.copy(thread["thread_id"])
    assert copied["thread_id"] != thread["thread_id"]
    assert copied["metadata"] == {"kind": "original", **bound("writer")}
    original_state = await client.threads.get_state(thread["thread_id"])
    copy_state = await client.threads.get_state(copied["thread_id"])
    assert copy_state["values"] == original_state["values"]
    assert copy_state["checkpoint"]["checkpoint_id"] == original_state["checkpoint"]["checkpoint_id"]
    assert copy_state["checkpoint"]["thread_id"] == copied["thread_id"]
    ap.run(ap.alice, copied["thread_id"], "and another")  # the copy continues on its own
    assert len((await client.threads.get_state(copied["thread_id"]))["values"]["messages"]) == 4
    assert len((await client.threads.get_state(thread["thread_id"]))["values"]["messages"]) == 2


async def test_bad_bodies_and_unsupported_parameters_are_422_naming_them(ap: APServer) -> None:
    client = ap.client()
    with pytest.raises(UnprocessableEntityError) as info:
        await client.threads.search(values={"messages": []})
    assert "values" in info.value.response.json()["error"]["message"]
    with pytest.raises(UnprocessableEntityError) as info:
        await client.threads.search(extract={"x": "values.messages"})
    assert "extract" in info.value.response.json()["error"]["message"]
    with pytest.raises(ConflictError) as conflict:  # like a state update on a thread without a graph
        await client.threads.create(supersteps=[{"updates": [{"values": {}, "as_node": "model"}]}])
    assert "graph_id" in conflict.value.response.json()["error"]["message"]
    with pytest.raises(UnprocessableEntityError) as info:
        await client.threads.create(metadata={"pending_run": {}})
    assert "reserved" in info.value.response.json()["error"]["message"]
    with pytest.raises(UnprocessableEntityError):
        await client.threads.create(thread_id="has spaces")
    with pytest.raises(UnprocessableEntityError) as info:
        await client.threads.search(status="sleeping")  # type: ignore[arg-type]
    assert "status" in info.value.response.json()["error"]["message"]
    headers = {"x-api-key": ap.alice}
    async with httpx.AsyncClient(base_url=ap.url, headers=headers) as http:
        thread = (await http.post("/threads", json={})).json()
        include = await http.get(f"/threads/{thread['thread_id']}", params={"include": "ttl"})
        assert include.status_code == 422 and "include" in include.json()["error"]["message"]
        ttl = await http.post("/threads", json={"ttl": {"ttl": 5, "strategy": "keep_latest"}})
        assert ttl.status_code == 422 and "strategy" in ttl.json()["error"]["message"]
        limit = await http.post("/threads/search", json={"limit": 100000})
        assert limit.status_code == 422 and "limit" in limit.json()["error"]["message"]


async def test_ttl_in_minutes_sets_the_session_lifetime(ap: APServer) -> None:
    thread = await ap.client().threads.create(ttl=30)
    session = httpx.get(
        f"{ap.url}/v1/sessions/{thread['thread_id']}", headers={"Authorization": f"Bearer {ap.alice}"}
    ).json()
    assert session["ttl_s"] == 1800


async def test_create_with_supersteps_seeds_the_state(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create(
        graph_id="writer",
        supersteps=[
            {
                "updates": [
                    {"values": {"messages": [{"type": "human", "content": "seeded question"}]}, "as_node": "model"}
                ]
            },
            {"updates": [{"values": {"messages": [{"type": "ai", "content": "seeded answer"}]}, "as_node": "model"}]},
        ],
    )
    state = await client.threads.get_state(thread["thread_id"])
    assert [(m["type"], m["content"]) for m in state["values"]["messages"]] == [
        ("human", "seeded question"),
        ("ai", "seeded answer"),
    ]
    assert len(await client.threads.get_history(thread["thread_id"], limit=100)) >= 2
    ap.run(ap.alice, thread["thread_id"], "and now?")  # a run continues the seeded conversation
    assert len((await client.threads.get_state(thread["thread_id"]))["values"]["messages"]) == 4
    with pytest.raises(UnprocessableEntityError) as info:
        await client.threads.create(
            graph_id="writer", supersteps=[{"updates": [{"values": {}, "command": {"resume": 1}, "as_node": "model"}]}]
        )
    assert "command" in info.value.response.json()["error"]["message"]
    tag = uuid.uuid4().hex
    with pytest.raises(UnprocessableEntityError):
        await client.threads.create(
            graph_id="writer", metadata={"tag": tag}, supersteps=[{"updates": [{"values": {}, "as_node": "nowhere"}]}]
        )
    assert await client.threads.search(metadata={"tag": tag}) == []  # the refused thread was not kept


async def test_prune_keep_latest_and_delete(ap: APServer) -> None:
    client = ap.client()
    thread_id = (await client.threads.create(graph_id="writer"))["thread_id"]
    for text in ("one", "two"):
        ap.run(ap.alice, thread_id, text)
    latest = await client.threads.get_state(thread_id)
    assert len(await client.threads.get_history(thread_id, limit=100)) > 1
    others = (await ap.client(ap.bob).threads.create())["thread_id"]
    result = await client.threads.prune([thread_id, others, str(uuid.uuid4())], strategy="keep_latest")
    assert result == {"pruned_count": 1}  # bob's and the unknown id are skipped unseen
    history = await client.threads.get_history(thread_id, limit=100)
    assert [h["checkpoint"]["checkpoint_id"] for h in history] == [latest["checkpoint"]["checkpoint_id"]]
    assert (await client.threads.get_state(thread_id))["values"] == latest["values"]
    assert await client.threads.prune([thread_id]) == {"pruned_count": 1}
    with pytest.raises(NotFoundError):
        await client.threads.get(thread_id)
    assert (await ap.client(ap.bob).threads.get(others))["thread_id"] == others
