"""The executor with sessions on every backend: conversations continue, runs on one session don't
interleave, and nobody else can use a session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import SessionNotFoundError
from agent_runtime.models.offline import OfflineChatModel
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.sessions import build_session_manager
from agent_runtime.types import AgentContext, Principal
from tests.backends import STATE_BACKENDS, backend_settings
from tests.helpers import resolver_for

ADA = Principal(tenant="acme", user="ada")
EVE = Principal(tenant="evil", user="eve")


@pytest.fixture(params=STATE_BACKENDS)
async def executor(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AgentExecutor]:
    settings = backend_settings(request.param, request, tmp_path)
    sessions = build_session_manager(settings)
    model = OfflineChatModel(token_latency_ms=2)
    executor = AgentExecutor(AgentFactory(settings, model_resolver=resolver_for(model)), session_manager=sessions)
    yield executor
    await executor.aclose()
    await sessions.aclose()


def run(text: str, session: str, principal: Principal = ADA, **metadata: object) -> AgentContext:
    return AgentContext(input=text, template="writer", session_id=session, principal=principal, metadata=metadata)


async def test_a_session_continues_the_conversation(executor: AgentExecutor) -> None:
    first = await executor.execute_async(run("my name is Ada", "chat-1", create_session=True))
    assert first.session_id == "chat-1"
    second = await executor.execute_async(run("what is my name?", "chat-1"))
    assert "Ada" in second.output
    events = [e async for e in executor.execute_stream(run("and again, what is my name?", "chat-1"))]
    assert "Ada" in events[-1].data["output"]
    assert executor.session_manager is not None
    session = await executor.session_manager.get_session("chat-1", tenant="acme", user_id="ada")
    assert session.message_count == 6  # three runs: a question and an answer each
    history = await executor.session_manager.get_messages("chat-1", tenant="acme", user_id="ada")
    assert [m["content"] for m in history][:2] == ["my name is Ada", first.output]


async def test_unknown_and_foreign_sessions_are_not_found(executor: AgentExecutor) -> None:
    with pytest.raises(SessionNotFoundError):
        await executor.execute_async(run("hello", "never-made"))
    await executor.execute_async(run("my name is Ada", "private", create_session=True))
    with pytest.raises(SessionNotFoundError) as foreign:
        await executor.execute_async(run("what is my name?", "private", principal=EVE))
    with pytest.raises(SessionNotFoundError) as missing:
        await executor.execute_async(run("what is my name?", "missing-too", principal=EVE))
    assert str(foreign.value).replace("private", "X") == str(missing.value).replace("missing-too", "X")


async def test_concurrent_runs_on_one_session_do_not_interleave(executor: AgentExecutor) -> None:
    await executor.execute_async(run("my name is Ada", "busy", create_session=True))
    questions = [f"question number {i} about the sea" for i in range(4)]
    await asyncio.gather(*(executor.execute_async(run(q, "busy")) for q in questions))
    assert executor.session_manager is not None
    history = await executor.session_manager.get_messages("busy", tenant="acme", user_id="ada")
    roles = [m["role"] for m in history]
    assert roles == ["user", "assistant"] * 5  # every question directly followed by its own answer
    asked = [m["content"] for m in history if m["role"] == "user"][1:]
    assert sorted(asked) == sorted(questions)
