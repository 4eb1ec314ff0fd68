"""Two `agent-runtime serve` processes on one state backend (SQLite file, Redis): a run queued through
one is joined, listed, collided with and cancelled through the other, with langgraph-sdk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from tests.agent_protocol.core.test_two_processes import pair
from tests.helpers import until
from tests.server.conftest import ServeProcess

__all__ = ["pair"]

LONG = {"messages": [{"role": "user", "content": "write a long story about the sea " * 5}]}


@pytest.fixture
def slow_pair(tmp_path: Path) -> Iterator[tuple[ServeProcess, ServeProcess, str]]:
    """Two processes on one SQLite file whose model is slow and whose workers renew their leases
    often: a run lasts long enough to be cancelled from the process that does not execute it."""
    env = {
        "AGENT_RUNTIME_STATE_BACKEND": "sqlite",
        "AGENT_RUNTIME_DATA_DIR": str(tmp_path),
        "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
        "AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": "300",
        "AGENT_RUNTIME_RUNS__HEARTBEAT_S": "0.2",
        "AGENT_RUNTIME_RUNS__LEASE_S": "3",
    }
    first = ServeProcess(env)
    key = first.admin_key()
    first.wait_ready()
    second = ServeProcess(env)
    try:
        second.wait_ready()
        yield first, second, key
    finally:
        second.terminate()
        first.terminate()


async def test_a_run_queued_in_one_process_is_joined_in_the_other(
    pair: tuple[ServeProcess, ServeProcess, str],
) -> None:
    first, second, key = pair
    one, two = get_client(url=first.url, api_key=key), get_client(url=second.url, api_key=key)
    thread_id = (await one.threads.create())["thread_id"]
    run = await one.runs.create(thread_id, "writer", input={"messages": "my name is Ada"})
    values = await two.runs.join(thread_id, run["run_id"])
    assert [m["type"] for m in values["messages"]] == ["human", "ai"]
    assert (await two.runs.get(thread_id, run["run_id"]))["status"] == "success"
    again = await two.runs.wait(thread_id, "writer", input={"messages": "what is my name?"})
    assert isinstance(again, dict) and "Ada" in again["messages"][-1]["content"]
    assert [r["status"] for r in await one.runs.list(thread_id)] == ["success", "success"]


async def test_a_busy_thread_and_a_cancel_across_processes(
    slow_pair: tuple[ServeProcess, ServeProcess, str],
) -> None:
    first, second, key = slow_pair
    one, two = get_client(url=first.url, api_key=key), get_client(url=second.url, api_key=key)
    thread_id = (await two.threads.create())["thread_id"]
    run = await two.runs.create(thread_id, "writer", input=LONG)
    with pytest.raises(httpx.HTTPStatusError) as busy:
        await one.runs.create(thread_id, "writer", input=LONG)
    assert busy.value.response.status_code == 409

    async def running() -> bool:
        return (await one.runs.get(thread_id, run["run_id"]))["status"] == "running"

    await until(running, "the run to start in either process", timeout=30)
    answer = await one.runs.cancel(thread_id, run["run_id"], wait=True)
    assert answer["__error__"]["error"] == "cancelled"
    assert (await two.runs.get(thread_id, run["run_id"]))["status"] == "interrupted"
    assert (await two.threads.get(thread_id))["status"] == "idle"
