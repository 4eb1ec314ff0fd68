"""Cancel, delete, busy threads and failed runs through langgraph-sdk, on a server whose model is slow."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from tests.agent_protocol.core.conftest import APServer
from tests.helpers import until

LONG = {"messages": [{"role": "user", "content": "tell me a long story about the sea and the moon"}]}


async def _running(client: LangGraphClient, thread_id: str) -> dict[str, Any]:
    run = await client.runs.create(thread_id, "writer", input=LONG)

    async def started() -> bool:
        return (await client.runs.get(thread_id, run["run_id"]))["status"] == "running"

    await until(started, "the run to start", timeout=30)
    return run


async def test_cancel_a_running_run(ap_slow: APServer) -> None:
    client = ap_slow.client()
    thread = await client.threads.create()
    run = await _running(client, thread["thread_id"])
    assert (await client.threads.get(thread["thread_id"]))["status"] == "busy"
    await client.runs.cancel(thread["thread_id"], run["run_id"], wait=True)
    done = await client.runs.get(thread["thread_id"], run["run_id"])
    assert done["status"] == "interrupted" and done["cancel_reason"] == "cancelled"
    joined = await client.runs.join(thread["thread_id"], run["run_id"])
    assert joined["__error__"]["error"] == "cancelled"
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"
    with pytest.raises(ConflictError):  # finished: nothing to cancel
        await client.runs.cancel(thread["thread_id"], run["run_id"])


async def test_busy_thread_rejects_a_second_run(ap_slow: APServer) -> None:
    client = ap_slow.client()
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "writer", input=LONG)
    with pytest.raises(ConflictError) as info:
        await client.runs.create(thread["thread_id"], "writer", input=LONG)
    assert info.value.response.json()["error"]["code"] == "session_busy"
    with pytest.raises(httpx.HTTPStatusError) as waited:  # the SDK's wait raises httpx's own error
        await client.runs.wait(thread["thread_id"], "writer", input=LONG, multitask_strategy="reject")
    assert waited.value.response.status_code == 409
    with pytest.raises(ConflictError):  # an active run's record stays
        await client.runs.delete(thread["thread_id"], run["run_id"])
    await client.runs.cancel(thread["thread_id"], run["run_id"], wait=True)


async def test_cancel_with_rollback_drops_the_run(ap_slow: APServer) -> None:
    client = ap_slow.client()
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], "writer", input={"messages": "a first short line"})
    run = await _running(client, thread["thread_id"])
    await client.runs.cancel(thread["thread_id"], run["run_id"], wait=True, action="rollback")
    with pytest.raises(NotFoundError):  # its record went with its progress
        await client.runs.get(thread["thread_id"], run["run_id"])
    state = await client.threads.get_state(thread["thread_id"])
    assert [m["content"] for m in state["values"]["messages"] if m["type"] == "human"] == ["a first short line"]
    with pytest.raises(UnprocessableEntityError) as info:
        await client.runs.cancel(thread["thread_id"], run["run_id"], action="sideways")  # type: ignore[arg-type]
    assert "action" in info.value.response.json()["error"]["message"]


async def test_multitask_strategies(ap_slow: APServer) -> None:
    client = ap_slow.client()
    thread = await client.threads.create()
    first = await _running(client, thread["thread_id"])
    second = await client.runs.create(
        thread["thread_id"], "writer", input={"messages": "then this"}, multitask_strategy="interrupt"
    )
    assert second["multitask_strategy"] == "interrupt"
    assert (await client.runs.join(thread["thread_id"], second["run_id"]))["messages"][-1]["type"] == "ai"
    assert (await client.runs.get(thread["thread_id"], first["run_id"]))["status"] == "interrupted"
    third = await _running(client, thread["thread_id"])
    fourth = await client.runs.create(
        thread["thread_id"], "writer", input={"messages": "after that"}, multitask_strategy="enqueue"
    )
    await client.runs.cancel(thread["thread_id"], third["run_id"])
    values = await client.runs.join(thread["thread_id"], fourth["run_id"])
    assert values["messages"][-2]["content"] == "after that"


async def test_delete_a_finished_run(ap_slow: APServer) -> None:
    client = ap_slow.client()
    thread = await client.threads.create()
    run = await _running(client, thread["thread_id"])
    await client.runs.cancel(thread["thread_id"], run["run_id"], wait=True)
    await client.runs.delete(thread["thread_id"], run["run_id"])
    with pytest.raises(NotFoundError):
        await client.runs.get(thread["thread_id"], run["run_id"])
    with pytest.raises(NotFoundError):
        await client.runs.delete(thread["thread_id"], run["run_id"])
    assert await client.runs.list(thread["thread_id"]) == []


async def test_failed_run_marks_its_thread(ap_slow: APServer) -> None:
    client = ap_slow.client()
    thread = await client.threads.create()
    answer = await client.runs.wait(thread["thread_id"], "hasty", input=LONG, raise_error=False)
    assert isinstance(answer, dict) and answer["__error__"]["error"] == "timeout"
    with pytest.raises(Exception, match="timeout"):  # the SDK raises on it by default
        await client.runs.wait(thread["thread_id"], "hasty", input=LONG)
    runs = await client.runs.list(thread["thread_id"])
    assert [r["status"] for r in runs] == ["timeout", "timeout"]
    assert (await client.threads.get(thread["thread_id"]))["status"] == "error"
    found = await client.threads.search(status="error", limit=100)
    assert thread["thread_id"] in {t["thread_id"] for t in found}


def test_wait_answers_with_the_run_location(ap_slow: APServer) -> None:
    thread = httpx.post(f"{ap_slow.url}/threads", json={}, headers={"x-api-key": ap_slow.alice}).json()
    response = httpx.post(
        f"{ap_slow.url}/threads/{thread['thread_id']}/runs/wait",
        json={"assistant_id": "hasty", "input": LONG},
        headers={"x-api-key": ap_slow.alice},
        timeout=30,
    )
    assert response.status_code == 200
    location = response.headers["content-location"]
    assert location.startswith(f"/threads/{thread['thread_id']}/runs/")
    assert response.headers["location"] == f"{location}/join"


async def test_cancel_with_wait_answers_like_join(ap_slow: APServer) -> None:
    thread = await ap_slow.client().threads.create()
    run = await _running(ap_slow.client(), thread["thread_id"])
    url = f"{ap_slow.url}/threads/{thread['thread_id']}/runs/{run['run_id']}/cancel"
    async with httpx.AsyncClient(headers={"x-api-key": ap_slow.alice}, timeout=30) as http:
        answer = await http.post(url, params={"wait": 1})
        assert answer.status_code == 200 and answer.json()["__error__"]["error"] == "cancelled"
        again = await http.post(url)
        assert again.status_code == 409


async def test_wait_with_on_disconnect_cancel(ap_slow: APServer) -> None:
    client = ap_slow.client()
    thread = await client.threads.create()
    body = {"assistant_id": "writer", "input": LONG, "on_disconnect": "cancel"}
    url = f"{ap_slow.url}/threads/{thread['thread_id']}/runs/wait"
    async with httpx.AsyncClient(headers={"x-api-key": ap_slow.alice}) as http:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up: the server sees it go
            await http.post(url, json=body, timeout=httpx.Timeout(30, read=1.5))

    async def cancelled() -> list[dict[str, Any]]:
        runs = await client.runs.list(thread["thread_id"])
        return [r for r in runs if r["status"] == "interrupted"]

    await until(cancelled, "the abandoned run to be cancelled", timeout=30)


async def test_wait_continues_after_a_disconnect_by_default(ap_slow: APServer) -> None:
    client = ap_slow.client()
    thread = await client.threads.create()
    body = {"assistant_id": "writer", "input": {"messages": "hi"}}
    url = f"{ap_slow.url}/threads/{thread['thread_id']}/runs/wait"
    async with httpx.AsyncClient(headers={"x-api-key": ap_slow.alice}) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(url, json=body, timeout=httpx.Timeout(30, read=0.5))

    async def succeeded() -> list[dict[str, Any]]:
        runs = await client.runs.list(thread["thread_id"])
        return [r for r in runs if r["status"] == "success"]

    await until(succeeded, "the run to finish without its client", timeout=60)


async def test_cancel_many(ap_slow: APServer) -> None:
    alice, bob = ap_slow.client(), ap_slow.client(ap_slow.bob)
    mine, theirs = await alice.threads.create(), await bob.threads.create()
    run_a = await _running(alice, mine["thread_id"])
    run_b = await _running(bob, theirs["thread_id"])
    await bob.runs.cancel_many(status="all")  # bob's runs only

    async def stopped(client: LangGraphClient, thread_id: str, run_id: str) -> bool:
        return (await client.runs.get(thread_id, run_id))["status"] == "interrupted"

    await until(lambda: stopped(bob, theirs["thread_id"], run_b["run_id"]), "bob's run to stop", timeout=30)
    assert (await alice.runs.get(mine["thread_id"], run_a["run_id"]))["status"] == "running"
    with pytest.raises(NotFoundError):  # checked before anything is cancelled
        await alice.runs.cancel_many(thread_id=mine["thread_id"], run_ids=[run_a["run_id"], run_b["run_id"]])
    assert (await alice.runs.get(mine["thread_id"], run_a["run_id"]))["status"] == "running"
    await alice.runs.cancel_many(thread_id=mine["thread_id"], run_ids=[run_a["run_id"]])
    await until(lambda: stopped(alice, mine["thread_id"], run_a["run_id"]), "alice's run to stop", timeout=30)
    with pytest.raises(UnprocessableEntityError):
        await alice.runs.cancel_many()
    with pytest.raises(UnprocessableEntityError):
        await alice.runs.cancel_many(thread_id=mine["thread_id"], run_ids=[run_a["run_id"]], status="all")
