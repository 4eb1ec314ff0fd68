"""Human in the loop through langgraph-sdk: a run stops at the ``gated`` template's interrupt and a
``command: {resume: ...}`` run answers it (how Agent Chat UI does), on a thread and in the background."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, UnprocessableEntityError

from tests.agent_protocol.core.conftest import APServer

CALC = {"messages": [{"role": "user", "content": 'use calculator {"expression": "6*7"}'}]}
APPROVE = {"decisions": [{"type": "approve"}]}


async def _paused(client: LangGraphClient) -> tuple[str, dict[str, Any]]:
    thread = await client.threads.create()
    values = await client.runs.wait(thread["thread_id"], "gated", input=CALC)
    assert isinstance(values, dict)
    return str(thread["thread_id"]), values


async def test_wait_stops_at_the_interrupt_and_command_resumes(ap: APServer) -> None:
    client = ap.client()
    thread_id, values = await _paused(client)
    interrupt = values["__interrupt__"][0]
    assert interrupt["id"] and interrupt["value"]["action_requests"][0]["name"] == "calculator"
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    assert (await client.runs.list(thread_id))[0]["status"] == "interrupted"
    answered = await client.runs.wait(thread_id, "gated", command={"resume": APPROVE})
    assert isinstance(answered, dict) and "__interrupt__" not in answered
    tools = [m for m in answered["messages"] if m["type"] == "tool"]
    assert tools and "42" in tools[0]["content"]
    assert (await client.threads.get(thread_id))["status"] == "idle"
    runs = await client.runs.list(thread_id)
    assert runs[0]["status"] == "success" and runs[0]["kwargs"]["command"] == {"resume": APPROVE}


async def test_background_resume_by_interrupt_id(ap: APServer) -> None:
    client = ap.client()
    thread_id, values = await _paused(client)
    interrupt_id = values["__interrupt__"][0]["id"]
    run = await client.runs.create(  # as Agent Chat UI sends it (its graphs may have subgraphs; ours have none)
        thread_id,
        "gated",
        command={"resume": {interrupt_id: APPROVE}},
        stream_subgraphs=True,
        stream_resumable=True,
    )
    answered = await client.runs.join(thread_id, run["run_id"])
    assert any(m["type"] == "tool" and "42" in m["content"] for m in answered["messages"])


async def test_reject_decision(ap: APServer) -> None:
    client = ap.client()
    thread_id, _ = await _paused(client)
    answered = await client.runs.wait(thread_id, "gated", command={"resume": [{"type": "reject", "message": "no"}]})
    assert isinstance(answered, dict)
    assert all("42" not in str(m["content"]) for m in answered["messages"] if m["type"] == "tool")


async def test_bad_resumes(ap: APServer) -> None:
    client = ap.client()
    thread_id, _ = await _paused(client)
    with pytest.raises(ConflictError):  # a new input would orphan the paused tool call
        await client.runs.create(thread_id, "gated", input=CALC)
    with pytest.raises(UnprocessableEntityError):  # two decisions for one pending call
        await client.runs.create(thread_id, "gated", command={"resume": [{"type": "approve"}] * 2})
    with pytest.raises(UnprocessableEntityError) as info:
        await client.runs.create(thread_id, "gated", command={"resume": APPROVE, "goto": "tools"})
    assert "goto" in info.value.response.json()["error"]["message"]
    with pytest.raises(UnprocessableEntityError) as info:
        await client.runs.create(thread_id, "gated", input=CALC, command={"resume": APPROVE})
    assert "command" in info.value.response.json()["error"]["message"]
    assert (await client.threads.get(thread_id))["status"] == "interrupted"  # still waiting, nothing queued
    idle = await client.threads.create()
    with pytest.raises(ConflictError):  # nothing waits here
        await client.runs.create(idle["thread_id"], "gated", command={"resume": APPROVE})
