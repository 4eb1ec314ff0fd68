"""Agent Protocol runs through langgraph-sdk against a real server: background + join, wait on a thread
and stateless, list / get, batch; each once per state backend."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph_sdk.errors import NotFoundError

from agent_runtime.agents.assistants import assistant_id
from tests.agent_protocol.core.conftest import APServer
from tests.helpers import until

HELLO = {"messages": [{"role": "user", "content": "hello there"}]}


def _texts(values: dict[str, Any], kind: str) -> list[str]:
    return [m["content"] for m in values["messages"] if m["type"] == kind]


async def test_background_run_then_join(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "writer", input=HELLO, metadata={"k": "v"})
    assert run["thread_id"] == thread["thread_id"] and run["assistant_id"] == assistant_id("writer")
    assert run["status"] in ("pending", "running", "success") and run["metadata"] == {"k": "v"}
    assert run["multitask_strategy"] == "reject" and run["created_at"].endswith("+00:00")
    values = await client.runs.join(thread["thread_id"], run["run_id"])
    assert _texts(values, "human") == ["hello there"] and _texts(values, "ai")
    done = await client.runs.get(thread["thread_id"], run["run_id"])
    assert done["status"] == "success" and done["kwargs"]["input"]["messages"][0]["content"] == "hello there"
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"] == values
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"


async def test_wait_on_a_thread_continues_the_conversation(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create()
    first = await client.runs.wait(thread["thread_id"], "writer", input=HELLO)
    second = await client.runs.wait(
        thread["thread_id"], "writer", input={"messages": [{"role": "user", "content": "again"}]}
    )
    assert isinstance(first, dict) and isinstance(second, dict)
    assert _texts(second, "human") == ["hello there", "again"] and len(_texts(second, "ai")) == 2
    runs = await client.runs.list(thread["thread_id"])
    assert [r["status"] for r in runs] == ["success", "success"]
    assert runs[0]["created_at"] >= runs[1]["created_at"]


async def test_wait_if_not_exists_creates_the_thread(ap: APServer) -> None:
    client = ap.client()
    thread_id = str(uuid.uuid4())
    seen: list[Any] = []
    values = await client.runs.wait(
        thread_id, "writer", input=HELLO, if_not_exists="create", on_run_created=seen.append
    )
    assert isinstance(values, dict) and _texts(values, "human") == ["hello there"]
    assert seen and seen[0]["thread_id"] == thread_id
    thread = await client.threads.get(thread_id)
    assert thread["metadata"]["graph_id"] == "writer"


async def test_stateless_wait_leaves_no_thread(ap: APServer) -> None:
    client = ap.client()
    before = {t["thread_id"] for t in await client.threads.search(limit=1000)}
    values = await client.runs.wait(None, "writer", input={"messages": "plain string input"})
    assert isinstance(values, dict) and _texts(values, "human") == ["plain string input"]
    after = {t["thread_id"] for t in await client.threads.search(limit=1000)}
    assert after == before


async def test_stateless_background_run_keep(ap: APServer) -> None:
    client = ap.client()
    run = await client.runs.create(None, "writer", input=HELLO, on_completion="keep")
    thread_id = run["thread_id"]
    values = await client.runs.join(thread_id, run["run_id"])
    assert _texts(values, "human") == ["hello there"]
    assert (await client.threads.get(thread_id))["thread_id"] == thread_id


async def test_stateless_background_run_deletes_its_thread(ap: APServer) -> None:
    client = ap.client()
    run = await client.runs.create(None, "writer", input=HELLO)

    async def gone() -> bool:
        try:
            await client.threads.get(run["thread_id"])
        except NotFoundError:
            return True
        return False

    await until(gone, timeout=30)


async def test_batch(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create()
    runs = await client.runs.create_batch(
        [
            {"assistant_id": "writer", "input": HELLO},
            {"assistant_id": assistant_id("writer"), "input": HELLO, "thread_id": thread["thread_id"]},
        ]
    )
    assert len(runs) == 2 and runs[1]["thread_id"] == thread["thread_id"]
    values = await client.runs.join(thread["thread_id"], runs[1]["run_id"])
    assert _texts(values, "human") == ["hello there"]


async def test_list_filters_and_pages(ap: APServer) -> None:
    client = ap.client()
    thread = await client.threads.create()
    for _ in range(3):
        await client.runs.wait(thread["thread_id"], "writer", input=HELLO)
    runs = await client.runs.list(thread["thread_id"], limit=2)
    assert len(runs) == 2
    rest = await client.runs.list(thread["thread_id"], limit=2, offset=2)
    assert len(rest) == 1 and rest[0]["run_id"] not in {r["run_id"] for r in runs}
    assert await client.runs.list(thread["thread_id"], status="error") == []
    assert len(await client.runs.list(thread["thread_id"], status="success")) == 3


async def test_a_stateless_run_takes_the_whole_conversation(ap: APServer) -> None:
    client = ap.client()
    conversation = {
        "messages": [
            {"role": "user", "content": "my name is Ada"},
            {"role": "assistant", "content": "Hello Ada."},
            {"type": "human", "content": [{"type": "text", "text": "what is my name?"}]},
        ]
    }
    values = await client.runs.wait(None, "writer", input=conversation)
    assert isinstance(values, dict) and _texts(values, "human") == ["my name is Ada", "what is my name?"]
    assert "Ada" in values["messages"][-1]["content"]
    run = await client.runs.create(None, "writer", input=conversation, on_completion="keep")  # queued: the same
    joined = await client.runs.join(run["thread_id"], run["run_id"])
    assert "Ada" in joined["messages"][-1]["content"]
    shown = (await client.runs.get(run["thread_id"], run["run_id"]))["kwargs"]["input"]["messages"]
    assert [m["type"] for m in shown] == ["human", "ai", "human"] and shown[-1]["content"] == "what is my name?"


async def test_a_thread_keeps_its_own_conversation(ap: APServer) -> None:
    """A client resending the conversation on a thread adds only what follows the last answer."""
    client = ap.client()
    thread = await client.threads.create()
    first = await client.runs.wait(thread["thread_id"], "writer", input={"messages": "my name is Ada"})
    assert isinstance(first, dict)
    resent = [*first["messages"], {"type": "human", "content": "what is my name?"}]
    values = await client.runs.wait(thread["thread_id"], "writer", input={"messages": resent})
    assert isinstance(values, dict) and _texts(values, "human") == ["my name is Ada", "what is my name?"]
