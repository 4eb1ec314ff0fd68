"""A tiny LangGraph conversation for the session tests, importable from a subprocess too.

The bot remembers a name told earlier in the thread, so a reply proves the history was resumed.
Run as a script it is "another worker": ``python _session_graph.py BACKEND TARGET SESSION TEXT``.
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph

from agent_runtime.sessions import SessionManager
from agent_runtime.sessions.base import SessionStore


def reply(state: MessagesState) -> dict[str, Any]:
    said = [m.text for m in state["messages"] if isinstance(m, HumanMessage)]
    names = [m.group(1) for text in said if (m := re.search(r"my name is (\w+)", text))]
    if "what is my name" in said[-1]:
        answer = f"Your name is {names[-1]}." if names else "I don't know your name."
    else:
        answer = f"Nice to meet you, {names[-1]}." if names else "Hello."
    return {"messages": [AIMessage(answer)]}


def build_graph(checkpointer: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=checkpointer)


async def run_turn(manager: SessionManager, session_id: str, text: str, *, user: str = "ada") -> str:
    """One run as the executor does it: open the session, lock it, run with thread_id = session key."""
    session = await manager.open_for_run(session_id, tenant="t1", user_id=user, template="bot", create_missing=True)
    async with manager.lock(session_id, tenant="t1"):
        graph = build_graph(manager.checkpointer)
        out = await graph.ainvoke({"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": session.key}})
        await manager.record_run(session_id, len(out["messages"]), tenant="t1")
    return str(out["messages"][-1].text)


def store_for(backend: str, target: str) -> SessionStore:
    if backend == "sqlite":
        from agent_runtime.sessions.sqlite import SqliteSessionStore

        return SqliteSessionStore(target)
    from agent_runtime.sessions.redis import RedisSessionStore

    return RedisSessionStore(target)


async def _main(backend: str, target: str, session_id: str, text: str) -> None:
    manager = SessionManager(store_for(backend, target))
    try:
        print(await run_turn(manager, session_id, text))
    finally:
        await manager.aclose()


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:5]))
