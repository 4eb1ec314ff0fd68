"""Conversation state through the manager's LangGraph checkpointer, in one process and across processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _session_graph import build_graph, run_turn, store_for
from langchain_core.messages import HumanMessage
from tests.helpers import ManualClock

from agent_runtime.errors import SessionNotFoundError
from agent_runtime.sessions import SessionManager, build_session_manager
from agent_runtime.settings import Settings

GRAPH_SCRIPT = Path(__file__).with_name("_session_graph.py")
ROOT = Path(__file__).resolve().parents[2]


async def test_second_run_sees_the_first(manager: SessionManager) -> None:
    assert await run_turn(manager, "chat-1", "hi, my name is Ada") == "Nice to meet you, Ada."
    assert await run_turn(manager, "chat-1", "what is my name?") == "Your name is Ada."
    assert await run_turn(manager, "chat-2", "what is my name?", user="bob") == "I don't know your name."
    messages = await manager.get_messages("chat-1", tenant="t1", user_id="ada")
    assert messages == [
        {"role": "user", "content": "hi, my name is Ada"},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "what is my name?"},
        {"role": "assistant", "content": "Your name is Ada."},
    ]
    assert (await manager.get_session("chat-1", tenant="t1")).message_count == 4
    with pytest.raises(SessionNotFoundError):
        await manager.get_messages("chat-1", tenant="t1", user_id="bob")


async def test_messages_of_a_session_without_runs(manager: SessionManager) -> None:
    s = await manager.create_session("ada")
    assert await manager.get_messages(s.id) == []


async def test_concurrent_runs_do_not_interleave(manager: SessionManager) -> None:
    await asyncio.gather(*(run_turn(manager, "chat-1", f"my name is N{i}") for i in range(6)))
    roles = [m["role"] for m in await manager.get_messages("chat-1", tenant="t1")]
    assert roles == ["user", "assistant"] * 6


async def test_delete_and_expiry_drop_the_conversation(
    make_manager: Callable[..., SessionManager], clock: ManualClock
) -> None:
    manager = make_manager(clock=clock)
    await run_turn(manager, "chat-1", "my name is Ada")
    await manager.delete_session("chat-1", tenant="t1")
    graph = build_graph(manager.checkpointer)
    assert (await graph.aget_state({"configurable": {"thread_id": "t1/chat-1"}})).values == {}
    assert await run_turn(manager, "chat-1", "what is my name?") == "I don't know your name."

    await manager.touch("chat-1", ttl_s=60, tenant="t1")
    clock.advance(61)
    assert await manager.cleanup_expired() == 1
    assert (await graph.aget_state({"configurable": {"thread_id": "t1/chat-1"}})).values == {}


def _other_worker(backend: str, target: str, text: str) -> str:
    """Run one turn in a separate Python process, as another worker (or the same one after a restart)."""
    done = subprocess.run(
        [sys.executable, str(GRAPH_SCRIPT), backend, target, "chat-ada", text],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_resume_across_processes(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    target = request.getfixturevalue("redis_url") if backend == "redis" else str(tmp_path / "s.sqlite3")
    assert _other_worker(backend, target, "my name is Ada") == "Nice to meet you, Ada."
    manager = SessionManager(store_for(backend, target))
    try:
        assert await run_turn(manager, "chat-ada", "what is my name?") == "Your name is Ada."
        history = await manager.get_messages("chat-ada", tenant="t1", user_id="ada")
        assert [m["content"] for m in history][:2] == ["my name is Ada", "Nice to meet you, Ada."]
        assert len(history) == 4
    finally:
        await manager.aclose()
    assert _other_worker(backend, target, "what is my name?") == "Your name is Ada."


@pytest.mark.parametrize("backend", ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_build_session_manager(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_url") if backend == "redis" else "redis://127.0.0.1:1/0"
    settings = Settings(state_backend=backend, data_dir=tmp_path, redis_url=url)
    manager = build_session_manager(settings)
    try:
        assert manager.backend == backend
        assert manager.ttl_s == settings.limits.session_ttl_s
        s = await manager.create_session("ada")
        graph = build_graph(manager.checkpointer)
        await graph.ainvoke({"messages": [HumanMessage("my name is Ada")]}, {"configurable": {"thread_id": s.key}})
        assert len(await manager.get_messages(s.id)) == 2
    finally:
        await manager.aclose()
    if backend == "sqlite":
        assert (tmp_path / "agent-runtime.sqlite3").exists() and (tmp_path / "checkpoints.sqlite3").exists()
