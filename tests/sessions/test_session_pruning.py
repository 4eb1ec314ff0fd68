"""Bounded checkpoint history on every session backend (issue 14): a session thread keeps its latest
checkpoint plus ``checkpoint_history`` earlier ones, its pending writes and channel values stay
bounded too, a paused run still resumes, and the conversation and thread history still answer.

The graphs run on the savers directly (no HTTP), like the executor runs agents.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import Command, interrupt
from pydantic import ValidationError as PydanticValidationError
from tests.backends import backend_settings

from agent_runtime.errors import ValidationError
from agent_runtime.sessions import SessionManager, build_session_manager
from agent_runtime.sessions.retention import DEFAULT_CHECKPOINT_HISTORY, doomed_checkpoints
from agent_runtime.settings import SessionSettings, Settings

HISTORY = 5
WINDOW = 20  # messages the test bot keeps, as HistoryLimitMiddleware would


def chat_graph(checkpointer: Any) -> Any:
    """A bot that answers with the turn number and trims its state to the newest ``WINDOW`` messages."""

    def reply(state: MessagesState) -> dict[str, Any]:
        messages = state["messages"]
        drop = [RemoveMessage(id=str(m.id)) for m in messages[: max(0, len(messages) + 1 - WINDOW)]]
        return {"messages": [*drop, AIMessage(f"answer to {messages[-1].text}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=checkpointer)


async def stored(backend: str, saver: Any, thread_id: str) -> dict[str, int]:
    """What the backend really holds for one thread: checkpoints, pending writes, channel values."""
    if backend == "memory":
        return {
            "checkpoints": sum(len(c) for c in saver.storage.get(thread_id, {}).values()),
            "writes": sum(len(w) for k, w in saver.writes.items() if k[0] == thread_id),
            "blobs": sum(1 for k in saver.blobs if k[0] == thread_id),
        }
    if backend == "sqlite":
        counts = {}
        for table in ("checkpoints", "writes"):
            sql = f"SELECT COUNT(*) FROM {table} WHERE thread_id = ?"
            counts[table] = saver.conn.execute(sql, (thread_id,)).fetchone()[0]
        return counts  # channel values live inside the checkpoint rows
    if backend == "postgres":
        counts = {}
        for name, table in (
            ("checkpoints", "checkpoints"),
            ("writes", "checkpoint_writes"),
            ("blobs", "checkpoint_blobs"),
        ):
            async with saver.client.connection("test") as conn:
                cur = await conn.execute(f"SELECT COUNT(*) AS n FROM {table} WHERE thread_id = %s", (thread_id,))
                counts[name] = (await cur.fetchone())["n"]
        return counts
    idx, cp, bf, blobs, wkeys = saver._thread_keys(thread_id)
    client = saver.client
    assert await client.hlen(cp) == await client.zcard(idx) == await client.hlen(bf)
    writes = 0
    for key in await client.smembers(wkeys):
        writes += await client.hlen(key)
    return {"checkpoints": await client.zcard(idx), "writes": writes, "blobs": await client.hlen(blobs)}


async def test_history_stays_bounded_across_500_turns(
    backend: str, make_manager: Callable[..., SessionManager]
) -> None:
    manager = make_manager(checkpoint_history=HISTORY)
    saver = manager.checkpointer
    session = await manager.create_session("ada", tenant="t1")
    config = {"configurable": {"thread_id": session.key}}
    graph = chat_graph(saver)
    early: dict[str, int] = {}
    for turn in range(1, 501):
        await graph.ainvoke({"messages": [HumanMessage(f"turn {turn}", id=f"h{turn}")]}, config)
        if turn == 50:
            early = await stored(backend, saver, session.key)
    late = await stored(backend, saver, session.key)
    assert late["checkpoints"] == HISTORY + 1
    assert late == early  # writes and channel values stopped growing as well
    # the conversation still answers, from the latest checkpoint
    messages = await manager.get_messages(session.id, tenant="t1")
    assert messages[-1] == {"role": "assistant", "content": "answer to turn 500"}
    assert [m["content"] for m in messages if m["role"] == "user"][-1] == "turn 500"
    # and so does the thread history: newest first, every kept checkpoint readable
    history = [s async for s in graph.aget_state_history(config)]
    assert len(history) == HISTORY + 1
    assert history[0].values["messages"][-1].text == "answer to turn 500"
    assert [h.metadata["step"] for h in history] == sorted((h.metadata["step"] for h in history), reverse=True)
    for snapshot in history:
        assert (await saver.aget_tuple(snapshot.config)) is not None
    # a fork from the oldest kept checkpoint still runs
    forked = await graph.ainvoke({"messages": [HumanMessage("fork", id="f")]}, history[-1].config)
    assert forked["messages"][-1].text == "answer to fork"


async def test_unbounded_history_keeps_everything(backend: str, make_manager: Callable[..., SessionManager]) -> None:
    manager = make_manager(checkpoint_history=None)
    session = await manager.create_session("ada", tenant="t1")
    graph = chat_graph(manager.checkpointer)
    for turn in range(10):
        await graph.ainvoke({"messages": [HumanMessage(f"t{turn}")]}, {"configurable": {"thread_id": session.key}})
    assert (await stored(backend, manager.checkpointer, session.key))[
        "checkpoints"
    ] == 30  # input, before and after the step, per turn


def paused_graph(checkpointer: Any, ran: list[str]) -> Any:
    """A parent whose subgraph takes several steps, then pauses for approval (like a workflow step)."""

    def step(name: str) -> Callable[[MessagesState], dict[str, Any]]:
        def node(state: MessagesState) -> dict[str, Any]:
            ran.append(name)
            return {"messages": [AIMessage(name)]}

        return node

    def ask(state: MessagesState) -> dict[str, Any]:
        answer = interrupt("approve?")
        ran.append("ask")
        return {"messages": [AIMessage(f"approved: {answer}")]}

    sub = StateGraph(MessagesState)
    names = [f"s{i}" for i in range(6)]
    for name in names:
        sub.add_node(name, step(name))
    sub.add_node("ask", ask)
    for a, b in zip([START, *names], [*names, "ask"], strict=True):
        sub.add_edge(a, b)
    parent = StateGraph(MessagesState)
    parent.add_node("work", sub.compile())
    parent.add_edge(START, "work")
    return parent.compile(checkpointer=checkpointer)


@pytest.mark.parametrize("history", [0, 2])
async def test_a_paused_run_survives_pruning(
    backend: str, make_manager: Callable[..., SessionManager], history: int
) -> None:
    manager = make_manager(checkpoint_history=history)
    saver = manager.checkpointer
    session = await manager.create_session("ada", tenant="t1")
    config = {"configurable": {"thread_id": session.key}}
    chat = chat_graph(saver)
    for turn in range(10):
        await chat.ainvoke({"messages": [HumanMessage(f"turn {turn}")]}, config)
    ran: list[str] = []
    graph = paused_graph(saver, ran)
    paused = await graph.ainvoke({"messages": [HumanMessage("do it")]}, config)
    assert paused["__interrupt__"][0].value == "approve?"
    assert ran == [f"s{i}" for i in range(6)]
    # the root window, and in the subgraph's namespace as many, though it took 8 steps
    assert (await stored(backend, saver, session.key))["checkpoints"] == 2 * (history + 1)
    await saver.aprune([session.key], keep_last=1)  # even the harshest explicit prune keeps what it needs
    assert (await stored(backend, saver, session.key))["checkpoints"] == 2
    resumed = await graph.ainvoke(Command(resume="yes"), config)
    assert resumed["messages"][-1].text == "approved: yes"
    assert ran == [f"s{i}" for i in range(6)] + ["ask"]  # resumed where it paused, nothing ran twice
    assert resumed["messages"][-9].text == "answer to turn 9"  # the conversation before the pause


async def test_aprune_follows_langgraph_strategies(backend: str, make_manager: Callable[..., SessionManager]) -> None:
    manager = make_manager(checkpoint_history=None)
    saver = manager.checkpointer
    keys = [(await manager.create_session("ada", tenant="t1")).key for _ in range(2)]
    graph = chat_graph(saver)
    for key in keys:
        for turn in range(4):
            await graph.ainvoke({"messages": [HumanMessage(f"t{turn}")]}, {"configurable": {"thread_id": key}})
    await saver.aprune([keys[0]], keep_last=3)
    assert (await stored(backend, saver, keys[0]))["checkpoints"] == 3
    assert (await stored(backend, saver, keys[1]))["checkpoints"] == 12  # other threads untouched
    await saver.aprune([keys[0]], strategy="delete")
    assert (await stored(backend, saver, keys[0]))["checkpoints"] == 0
    with pytest.raises(ValidationError):
        await saver.aprune([keys[1]], strategy="keep_everything")
    with pytest.raises(ValidationError):
        await saver.aprune([keys[1]], keep_last=0)
    await saver.aprune([str(uuid.uuid4())])  # an unknown thread is a no-op


def test_rule_keeps_subgraph_checkpoints_newer_than_the_root_window() -> None:
    ids = {"": ["01", "03", "05", "07"], "work:a": ["02"], "work:b": ["06", "08", "09"]}
    assert doomed_checkpoints(ids, 2) == {"": ["01", "03"], "work:a": ["02"], "work:b": ["06"]}
    assert doomed_checkpoints({"work:b": ["1", "2"]}, 1) == {"work:b": ["1"]}  # no root: per namespace only
    assert doomed_checkpoints(ids, 10) == {}


async def test_negative_history_is_refused(make_manager: Callable[..., SessionManager]) -> None:
    with pytest.raises(ValidationError):
        make_manager(checkpoint_history=-1)


async def test_the_setting_reaches_every_saver(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_SESSIONS__CHECKPOINT_HISTORY", "3")
    manager = build_session_manager(backend_settings(backend, request, tmp_path))
    try:
        assert manager.checkpoint_history == manager.checkpointer.history == 3
        session = await manager.create_session("ada", tenant="t1")
        graph = chat_graph(manager.checkpointer)
        for turn in range(5):
            await graph.ainvoke({"messages": [HumanMessage(f"t{turn}")]}, {"configurable": {"thread_id": session.key}})
        assert (await stored(backend, manager.checkpointer, session.key))["checkpoints"] == 4
    finally:
        await manager.aclose()


def test_default_and_bad_settings() -> None:
    assert Settings().sessions.checkpoint_history == DEFAULT_CHECKPOINT_HISTORY == 20
    assert Settings(sessions=SessionSettings(checkpoint_history=None)).sessions.checkpoint_history is None
    with pytest.raises(PydanticValidationError):
        SessionSettings(checkpoint_history=-1)
