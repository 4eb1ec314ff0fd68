"""Bad input to the Agent Protocol runs routes: unknown or another tenant's / user's objects are 404,
unsupported fields 422 naming them, a missing scope 403; nothing is queued for a refused request."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError, PermissionDeniedError, UnprocessableEntityError

from tests.agent_protocol.core.conftest import APServer

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


async def _finished_run(ap: APServer) -> tuple[str, str]:
    client = ap.client()
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "writer", input=HELLO)
    await client.runs.join(thread["thread_id"], run["run_id"])
    return str(thread["thread_id"]), str(run["run_id"])


async def test_unknown_objects_are_404(ap: APServer) -> None:
    client = ap.client()
    thread_id, run_id = await _finished_run(ap)
    with pytest.raises(NotFoundError):
        await client.runs.create(thread_id, "no-such-assistant", input=HELLO)
    with pytest.raises(NotFoundError):
        await client.runs.create(str(uuid.uuid4()), "writer", input=HELLO)  # if_not_exists reject
    with pytest.raises(NotFoundError):
        await client.runs.get(thread_id, "run_unknown")
    with pytest.raises(NotFoundError):
        await client.runs.list(str(uuid.uuid4()))
    other = await client.threads.create()
    with pytest.raises(NotFoundError):  # a run is only found on its own thread
        await client.runs.get(other["thread_id"], run_id)
    with pytest.raises(NotFoundError):
        await client.runs.cancel(other["thread_id"], run_id)
    assert await client.runs.list(other["thread_id"]) == []


async def test_other_tenants_and_users_see_nothing(ap: APServer) -> None:
    thread_id, run_id = await _finished_run(ap)
    for key in (ap.eve, ap.bob):
        client = ap.client(key)
        for call in (
            client.runs.get(thread_id, run_id),
            client.runs.list(thread_id),
            client.runs.join(thread_id, run_id),
            client.runs.delete(thread_id, run_id),
            client.runs.create(thread_id, "writer", input=HELLO),
        ):
            with pytest.raises((NotFoundError, httpx.HTTPStatusError)) as info:
                await call
            assert getattr(info.value, "response").status_code == 404
    # eve's thread of the same id is hers: alice's run is not found through it
    eve = ap.client(ap.eve)
    await eve.threads.create(thread_id=thread_id)
    with pytest.raises(NotFoundError):
        await eve.runs.get(thread_id, run_id)
    assert await eve.runs.list(thread_id) == []
    assert (await ap.client().runs.get(thread_id, run_id))["status"] == "success"


async def test_admin_reaches_a_run_of_his_tenant(ap: APServer) -> None:
    thread_id, run_id = await _finished_run(ap)
    assert (await ap.client(ap.admin).runs.get(thread_id, run_id))["run_id"] == run_id


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"interrupt_before": ["tools"]}, "interrupt_before"),
        ({"interrupt_after": "*"}, "interrupt_after"),
        ({"checkpoint_id": "abc"}, "checkpoint_id"),
        ({"context": {"model_name": "x"}}, "context"),
        ({"config": {"configurable": {"model": "x"}}}, "configurable"),
        ({"config": {"recursion_limit": 5}}, "recursion_limit"),
        ({"feedback_keys": ["k"]}, "feedback_keys"),
        ({"durability": "exit"}, "durability"),
        ({"no_such_field": 1}, "no_such_field"),
        ({"input": {"messages": [{"role": "ai", "content": "x"}]}}, "user message"),
        ({"input": {"messages": [{"role": "system", "content": "x"}, *HELLO["messages"]]}}, "system"),
        ({"input": {"messages": [{"type": "tool", "content": "x"}, *HELLO["messages"]]}}, "input.messages[0]"),
        ({"input": {"messages": []}}, "input.messages"),
        ({"input": {"topic": "x"}}, "topic"),
        ({"input": None}, "input"),
        ({"input": {"messages": [{"role": "user", "content": "  "}]}}, "non-empty"),
        ({"input": {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}}, "text"),
        ({"on_completion": "keep"}, "on_completion"),
        ({"multitask_strategy": "sometimes"}, "multitask_strategy"),
    ],
)
def test_unsupported_fields_are_named(ap_sqlite: APServer, extra: dict[str, Any], named: str) -> None:
    headers = {"x-api-key": ap_sqlite.alice}
    thread = httpx.post(f"{ap_sqlite.url}/threads", json={}, headers=headers).json()
    body = {"assistant_id": "writer", "input": HELLO, **extra}
    response = httpx.post(f"{ap_sqlite.url}/threads/{thread['thread_id']}/runs", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert named in response.text
    runs = httpx.get(f"{ap_sqlite.url}/threads/{thread['thread_id']}/runs", headers=headers).json()
    assert runs == []


def _threads(ap: APServer, headers: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.post(f"{ap.url}/threads/search", json={"limit": 1000}, headers=headers).json()
    return found


def test_bad_query_and_batch(ap_sqlite: APServer) -> None:
    headers = {"x-api-key": ap_sqlite.alice}
    thread = httpx.post(f"{ap_sqlite.url}/threads", json={}, headers=headers).json()
    listed = httpx.get(f"{ap_sqlite.url}/threads/{thread['thread_id']}/runs?select=run_id", headers=headers)
    assert listed.status_code == 422 and "select" in listed.text
    bad = [{"assistant_id": "writer", "input": HELLO}, {"assistant_id": "nobody", "input": HELLO}]
    batch = httpx.post(f"{ap_sqlite.url}/runs/batch", json=bad, headers=headers)
    assert batch.status_code == 404  # checked before any run is queued
    before = {t["thread_id"] for t in _threads(ap_sqlite, headers)}
    unknown = [{"assistant_id": "writer", "input": HELLO}, {"assistant_id": "writer", "input": HELLO, "thread_id": "x"}]
    assert httpx.post(f"{ap_sqlite.url}/runs/batch", json=unknown, headers=headers).status_code == 404
    assert {t["thread_id"] for t in _threads(ap_sqlite, headers)} - before == set()  # no temporary thread either
    assert httpx.post(f"{ap_sqlite.url}/runs/batch", json=[], headers=headers).status_code == 422


async def test_runs_need_the_sessions_scope(ap_sqlite: APServer) -> None:
    client = ap_sqlite.client(ap_sqlite.no_sessions)
    with pytest.raises(PermissionDeniedError):
        await client.runs.create(None, "writer", input=HELLO)
    with pytest.raises(PermissionDeniedError):
        await client.runs.list(str(uuid.uuid4()))


async def test_same_thread_id_of_two_users_keeps_their_runs_apart(ap: APServer) -> None:
    thread_id = f"chosen-{uuid.uuid4().hex[:8]}"
    alice, bob = ap.client(ap.alice), ap.client(ap.bob)
    await alice.threads.create(thread_id=thread_id)
    await bob.threads.create(thread_id=thread_id)
    run = await alice.runs.create(thread_id, "writer", input=HELLO)
    with pytest.raises(NotFoundError):
        await bob.runs.get(thread_id, run["run_id"])
    assert await bob.runs.list(thread_id) == []
    values = await bob.runs.wait(thread_id, "writer", input={"messages": "bob's own"})  # not busy with alice's
    assert isinstance(values, dict) and [m["content"] for m in values["messages"] if m["type"] == "human"] == [
        "bob's own"
    ]
    await alice.runs.join(thread_id, run["run_id"])
    assert [r["run_id"] for r in await alice.runs.list(thread_id)] == [run["run_id"]]


async def test_refused_input_creates_no_thread(ap: APServer) -> None:
    client = ap.client()
    thread_id = str(uuid.uuid4())
    with pytest.raises(UnprocessableEntityError):
        await client.runs.create(thread_id, "writer", input={"messages": "\x00"}, if_not_exists="create")
    with pytest.raises(NotFoundError):
        await client.threads.get(thread_id)
