"""Redis dies mid-run and comes back: typed errors fast, nothing acknowledged lost, no restart needed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from _session_graph import reply, run_turn
from langchain_core.messages import HumanMessage
from langgraph.graph import START, MessagesState, StateGraph

from agent_runtime.errors import BackendError
from agent_runtime.sessions import SessionManager
from agent_runtime.sessions.redis import RedisSessionStore
from agent_runtime.settings import RedisSettings

pytestmark = pytest.mark.redis


def slow_graph(checkpointer: Any, started: asyncio.Event) -> Any:
    async def think(state: MessagesState) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(0.5)
        return reply(state)

    builder = StateGraph(MessagesState)
    builder.add_node("reply", think)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=checkpointer)


async def test_redis_killed_mid_run_then_restarted(fault_redis: Any, fast_redis_settings: RedisSettings) -> None:
    manager = SessionManager(RedisSessionStore(fault_redis.url, fast_redis_settings), lock_timeout_s=1)
    try:
        assert await run_turn(manager, "chat-ada", "my name is Ada") == "Nice to meet you, Ada."
        await manager.save_checkpoint("chat-ada", {"turn": 1}, tenant="t1")

        started = asyncio.Event()
        graph = slow_graph(manager.checkpointer, started)
        run = asyncio.create_task(
            graph.ainvoke({"messages": [HumanMessage("still there?")]}, {"configurable": {"thread_id": "t1/chat-ada"}})
        )
        await started.wait()
        fault_redis.kill()
        t0 = time.monotonic()
        with pytest.raises(BackendError):
            await run
        for call in (
            manager.get_session("chat-ada", tenant="t1"),
            manager.save_checkpoint("chat-ada", {"turn": 2}, tenant="t1"),
            manager.create_session("bob"),
            manager.cleanup_expired(),
        ):
            with pytest.raises(BackendError):
                await call
        with pytest.raises(BackendError):
            async with manager.lock("chat-ada", tenant="t1"):
                pass
        assert time.monotonic() - t0 < 10  # typed errors, never a hang

        fault_redis.start()  # same port and data dir: the append-only file is replayed
        resumed = await manager.resume_session("chat-ada", tenant="t1", user_id="ada")
        assert resumed.checkpoint == {"turn": 1}
        history = [m["content"] for m in await manager.get_messages("chat-ada", tenant="t1")]
        assert history[:2] == ["my name is Ada", "Nice to meet you, Ada."]
        assert await run_turn(manager, "chat-ada", "what is my name?") == "Your name is Ada."
        assert (await manager.create_session("bob")).user_id == "bob"
    finally:
        await manager.aclose()


async def test_unreachable_redis_fails_fast(fast_redis_settings: RedisSettings) -> None:
    manager = SessionManager(RedisSessionStore("redis://127.0.0.1:1/0", fast_redis_settings))
    try:
        t0 = time.monotonic()
        with pytest.raises(BackendError):
            await manager.get_session("chat-1")
        with pytest.raises(BackendError):
            await manager.ping()
        assert time.monotonic() - t0 < 10
    finally:
        await manager.aclose()
