"""Two `agent-runtime serve` processes on one state backend: a thread made through one is read,
updated, copied and deleted through the other, and a run in one shows the thread busy in the other."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError

from tests.agent_protocol.core.conftest import bound
from tests.server.conftest import ServeProcess


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServeProcess, ServeProcess, str]]:
    env = {
        "AGENT_RUNTIME_STATE_BACKEND": request.param,
        "AGENT_RUNTIME_DATA_DIR": str(tmp_path),
        "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
        "AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": "20",
    }
    if request.param == "redis":
        env["AGENT_RUNTIME_REDIS_URL"] = request.getfixturevalue("redis_url")
    first = ServeProcess(env)
    key = first.admin_key()
    first.wait_ready()
    second = ServeProcess(env)  # same backend: it finds the admin key and prints none
    try:
        second.wait_ready()
        yield first, second, key
    finally:
        second.terminate()
        first.terminate()


async def test_a_thread_is_shared_by_two_processes(pair: tuple[ServeProcess, ServeProcess, str]) -> None:
    first, second, key = pair
    one, two = get_client(url=first.url, api_key=key), get_client(url=second.url, api_key=key)
    thread = await one.threads.create(graph_id="writer", metadata={"made_in": "first"})
    thread_id = thread["thread_id"]
    ran = httpx.post(
        f"{first.url}/v1/runs",
        json={"template": "writer", "input": "my name is Ada", "session_id": thread_id},
        headers={"x-api-key": key},
        timeout=60,
    )
    assert ran.status_code == 200, ran.text
    seen = await two.threads.get(thread_id)
    assert seen["metadata"] == {"made_in": "first", **bound("writer")} and seen["status"] == "idle"
    assert [m["type"] for m in seen["values"]["messages"]] == ["human", "ai"]
    await two.threads.update_state(
        thread_id, {"messages": [{"type": "ai", "content": "edited in two"}]}, as_node="model"
    )
    assert (await one.threads.get_state(thread_id))["values"]["messages"][-1]["content"] == "edited in two"
    copied = await two.threads.copy(thread_id)
    found = {t["thread_id"] for t in await one.threads.search(metadata={"made_in": "first"}, limit=10)}
    assert found == {thread_id, copied["thread_id"]}
    await two.threads.delete(thread_id)
    with pytest.raises(NotFoundError):
        await one.threads.get(thread_id)
    assert (await one.threads.get(copied["thread_id"]))["values"]["messages"][-1]["content"] == "edited in two"


async def test_a_run_in_one_process_makes_the_thread_busy_in_the_other(
    pair: tuple[ServeProcess, ServeProcess, str],
) -> None:
    first, second, key = pair
    two = get_client(url=second.url, api_key=key)
    thread_id = (await two.threads.create(graph_id="writer"))["thread_id"]
    body = {"template": "writer", "input": "write a long story about the sea " * 5, "session_id": thread_id}
    done: dict[str, httpx.Response] = {}

    def run() -> None:
        done["run"] = httpx.post(f"{first.url}/v1/runs", json=body, headers={"x-api-key": key}, timeout=60)

    runner = threading.Thread(target=run)
    runner.start()
    statuses: set[str] = set()
    deadline = time.monotonic() + 30
    while runner.is_alive() and "busy" not in statuses and time.monotonic() < deadline:
        statuses.add((await two.threads.get(thread_id))["status"])
    runner.join(60)
    assert "busy" in statuses, statuses
    assert done["run"].status_code == 200
    assert (await two.threads.get(thread_id))["status"] == "idle"
