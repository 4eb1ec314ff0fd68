"""LangGraph's cron routes with the official ``langgraph-sdk`` client against a real server (memory, SQLite
files, a real redis-server): create (stateless and on a thread), search, count, get, update, delete,
isolation, bad input, and a tick that starts a run on the thread."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_type_hints

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError, PermissionDeniedError, UnprocessableEntityError
from langgraph_sdk.schema import Cron

from agent_runtime.agents.assistants import assistant_id
from agent_runtime.crons import CronScheduler
from tests.agent_protocol.core.conftest import APServer

HELLO = {"messages": [{"role": "user", "content": "write a haiku"}]}
YEARLY = "0 0 1 1 *"  # never due while the tests run: only the test's own scheduler fires it


def message(answer: UnprocessableEntityError) -> str:
    return str(answer.response.json()["error"]["message"])


async def test_create_get_update_delete_in_langgraphs_shape(ap: APServer) -> None:
    client = ap.client()
    end = datetime.now(UTC) + timedelta(days=30)
    cron = await client.crons.create(
        "writer", schedule="*/10 * * * *", input=HELLO, metadata={"team": "docs"}, timezone="Europe/Paris", end_time=end
    )
    assert set(cron) == set(get_type_hints(Cron))
    assert cron["assistant_id"] == assistant_id("writer") and cron["thread_id"] is None
    assert cron["schedule"] == "*/10 * * * *" and cron["timezone"] == "Europe/Paris" and cron["enabled"]
    assert cron["metadata"] == {"team": "docs"} and cron["user_id"] == "alice"
    assert cron["on_run_completed"] == "delete" and cron["payload"]["input"] == HELLO
    assert datetime.fromisoformat(cron["end_time"]) == end
    assert (
        datetime.now(UTC) < datetime.fromisoformat(cron["next_run_date"]) <= datetime.now(UTC) + timedelta(minutes=10)
    )
    assert (await client.http.get(f"/runs/crons/{cron['cron_id']}")) == cron
    updated = await client.crons.update(cron["cron_id"], schedule="0 8 * * 1", enabled=False, end_time=None)
    assert updated["schedule"] == "0 8 * * 1" and not updated["enabled"] and updated["end_time"] is None
    assert datetime.fromisoformat(updated["next_run_date"]).astimezone(UTC).hour in (6, 7)  # 08:00 Paris
    await client.crons.delete(cron["cron_id"])
    with pytest.raises(NotFoundError):
        await client.crons.delete(cron["cron_id"])
    with pytest.raises(NotFoundError):
        await client.crons.update(cron["cron_id"], enabled=True)


async def test_thread_crons_search_and_count(ap: APServer) -> None:
    client = ap.client(ap.bob)
    thread = await client.threads.create()
    tag = uuid.uuid4().hex
    on_thread = await client.crons.create_for_thread(
        thread["thread_id"],
        assistant_id("writer"),
        schedule=YEARLY,
        input=HELLO,
        metadata={"tag": tag},
        multitask_strategy="enqueue",
    )
    assert on_thread["thread_id"] == thread["thread_id"] and on_thread["on_run_completed"] is None
    assert on_thread["payload"]["multitask_strategy"] == "enqueue"
    stateless = [
        await client.crons.create("analyst", schedule=YEARLY, input=HELLO, metadata={"tag": tag, "i": i})
        for i in range(3)
    ]
    await client.crons.update(stateless[0]["cron_id"], enabled=False)
    found = await client.crons.search(metadata={"tag": tag}, limit=10)
    assert [c["cron_id"] for c in found] == [c["cron_id"] for c in reversed([on_thread, *stateless])]
    by_thread = await client.crons.search(thread_id=thread["thread_id"])
    assert [c["cron_id"] for c in by_thread] == [on_thread["cron_id"]]
    by_assistant = await client.crons.search(assistant_id="analyst", metadata={"tag": tag}, enabled=True)
    assert {c["cron_id"] for c in by_assistant} == {stateless[1]["cron_id"], stateless[2]["cron_id"]}
    page = await client.crons.search(metadata={"tag": tag}, sort_by="created_at", sort_order="asc", limit=2, offset=1)
    assert [c["cron_id"] for c in page] == [stateless[0]["cron_id"], stateless[1]["cron_id"]]
    selected = await client.crons.search(metadata={"tag": tag}, select=["cron_id", "enabled"], limit=1)
    assert set(selected[0]) == {"cron_id", "enabled"}
    assert await client.crons.count(metadata={"tag": tag}) == 4
    assert await client.crons.count(assistant_id="writer", metadata={"tag": tag}) == 1
    for cron in (on_thread, *stateless):
        await client.crons.delete(cron["cron_id"])
    assert await client.crons.count(metadata={"tag": tag}) == 0


async def test_another_users_or_tenants_crons_are_404(ap: APServer) -> None:
    cron = await ap.client().crons.create("writer", schedule=YEARLY, input=HELLO)
    for key in (ap.bob, ap.eve):
        other = ap.client(key)
        with pytest.raises(NotFoundError):
            await other.http.get(f"/runs/crons/{cron['cron_id']}")
        with pytest.raises(NotFoundError):
            await other.crons.update(cron["cron_id"], enabled=False)
        with pytest.raises(NotFoundError):
            await other.crons.delete(cron["cron_id"])
        assert cron["cron_id"] not in [c["cron_id"] for c in await other.crons.search(limit=1000)]
    thread = await ap.client(ap.bob).threads.create()
    with pytest.raises(NotFoundError):  # a cron on someone else's thread
        await ap.client().crons.create_for_thread(thread["thread_id"], "writer", schedule=YEARLY, input=HELLO)
    with pytest.raises(PermissionDeniedError):  # thread crons need the sessions scope
        await ap.client(ap.no_sessions).crons.create_for_thread(thread["thread_id"], "writer", schedule=YEARLY)
    await ap.client().crons.delete(cron["cron_id"])


@pytest.mark.parametrize(
    ("options", "named"),
    [
        pytest.param({"schedule": "every monday"}, "schedule", id="bad-cron"),
        pytest.param({"timezone": "Atlantis/Capital"}, "timezone", id="bad-tz"),
        pytest.param({"webhook": "https://example.com/hook"}, "webhook", id="webhook"),
        pytest.param({"config": {"configurable": {"x": 1}}}, "config", id="config"),
        pytest.param({"interrupt_before": ["tools"]}, "interrupt_before", id="interrupts"),
        pytest.param({"stream_mode": "updates"}, "stream_mode", id="stream-mode"),
        pytest.param({"on_run_completed": "keep"}, "on_run_completed", id="keep-threads"),
        pytest.param({"multitask_strategy": "enqueue"}, "multitask_strategy", id="multitask"),
        pytest.param({"input": {"messages": [], "extra": 1}}, "input", id="bad-input"),
    ],
)
async def test_bad_input_is_422_naming_the_field(ap: APServer, options: dict[str, Any], named: str) -> None:
    client = ap.client()
    arguments: dict[str, Any] = {"schedule": YEARLY, "input": HELLO} | options
    with pytest.raises(UnprocessableEntityError) as refused:
        await client.crons.create("writer", **arguments)
    error = refused.value.response.json()["error"]
    assert named in message(refused.value) or error.get("param") == named, error


async def test_unknown_assistant_or_thread_is_404(ap: APServer) -> None:
    client = ap.client()
    with pytest.raises(NotFoundError):
        await client.crons.create("no-such-graph", schedule=YEARLY, input=HELLO)
    with pytest.raises(NotFoundError):
        await client.crons.create_for_thread(str(uuid.uuid4()), "writer", schedule=YEARLY, input=HELLO)
    with pytest.raises(NotFoundError):
        await client.crons.delete(str(uuid.uuid4()))


async def test_a_tick_runs_the_assistant_on_the_thread(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create()
    cron = await client.crons.create_for_thread(thread["thread_id"], "writer", schedule=YEARLY, input=HELLO)
    runtime = ap.live.runtime
    assert runtime is not None and runtime.crons is not None and runtime.cron_scheduler is not None
    due = datetime.fromisoformat(cron["next_run_date"]).timestamp()
    scheduler = CronScheduler(
        runtime.crons.store,
        runtime.cron_scheduler.fire,
        authorize=runtime.cron_scheduler.authorize,
        clock=lambda: due + 1.0,
    )
    ticks = [t for t in ap.live.call(scheduler.run_due()) if t.cron_id == cron["cron_id"]]
    assert len(ticks) == 1 and ticks[0].run_id is not None, ticks
    assert not [t for t in ap.live.call(scheduler.run_due()) if t.cron_id == cron["cron_id"]]  # once
    headers = {"Authorization": f"Bearer {ap.alice}"}
    run = httpx.get(f"{ap.url}/v1/runs/{ticks[0].run_id}/wait", params={"timeout": 60}, headers=headers).json()
    assert run["status"] == "success" and run["session_id"] == thread["thread_id"] and run["user"] == "alice"
    state = await client.threads.get_state(thread["thread_id"])
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"]
    assert state["values"]["messages"][0]["content"] == "write a haiku"
    await client.crons.delete(cron["cron_id"])
