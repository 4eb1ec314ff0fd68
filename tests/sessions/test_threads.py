"""The thread core without HTTP: status from the session, ownership filters, copies on the memory saver."""

from __future__ import annotations

import pytest

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import PermissionDeniedError, ValidationError
from agent_runtime.sessions.manager import SessionManager
from agent_runtime.sessions.memory import MemorySessionStore
from agent_runtime.sessions.threads import Owner, Threads
from agent_runtime.types import Principal

ALICE = Principal(tenant="acme", user="alice", scopes=frozenset({"sessions"}))


@pytest.fixture
def threads() -> Threads:
    sessions = SessionManager(MemorySessionStore())
    factory = AgentFactory()
    return Threads(
        sessions,
        lambda name: factory.create_from_template(name, checkpointer=sessions.checkpointer),
        factory.has_template,
    )


async def test_a_failed_run_marks_the_thread_error_until_the_next_one(threads: Threads) -> None:
    session = await threads.create(ALICE, thread_id=None, metadata={"a": 1})
    assert (await threads.view(session)).status == "idle"
    failed = await threads.mark_run(session, "model unreachable")
    view = await threads.view(failed)
    assert view.status == "error" and view.metadata == {"a": 1}  # the runtime's key stays hidden
    assert (await threads.view(await threads.mark_run(failed, None))).status == "idle"


async def test_binding_a_template_reads_states_through_its_graph(threads: Threads) -> None:
    session = await threads.create(ALICE, thread_id="t-1", metadata={})
    assert threads.graph(session) is None
    bound = await threads.bind_template(session, "writer")
    assert bound.template == "writer" and threads.graph(bound) is not None
    await threads.update_state(bound, {"messages": [{"type": "human", "content": "hi"}]}, as_node="model")
    copy = await threads.copy(bound)
    state = await threads.state(copy)
    assert [m.content for m in state.values["messages"]] == ["hi"] and copy.template == "writer"


def test_owner_filters() -> None:
    assert Owner.of(ALICE, admin=False) == Owner("acme", "alice", "alice")
    assert Owner.of(ALICE, admin=True, user="bob") == Owner("acme", None, "bob")
    with pytest.raises(PermissionDeniedError):
        Owner.of(ALICE, admin=False, user="bob")


async def test_reserved_metadata_and_bad_history_limits(threads: Threads) -> None:
    with pytest.raises(ValidationError):
        await threads.create(ALICE, thread_id=None, metadata={"run_error": "x"})
    session = await threads.create(ALICE, thread_id=None, metadata=None)
    with pytest.raises(ValidationError):
        await threads.history(session, limit=0)


async def test_a_thread_without_a_graph_is_read_from_the_checkpointer(threads: Threads) -> None:
    session = await threads.create(ALICE, thread_id=None, metadata=None)
    graph = AgentFactory().create_from_template("writer", checkpointer=threads.sessions.checkpointer)
    await graph.ainvoke({"messages": [{"role": "user", "content": "hello"}]}, threads.config(session))
    assert threads.graph(session) is None  # never bound: read straight from the saver
    state = await threads.state(session)
    assert [m.type for m in state.values["messages"]] == ["human", "ai"] and state.config
    history = await threads.history(session, limit=100)
    assert history[0].config == state.config and len(history) >= 2
    assert (await threads.view(session)).status == "idle"


async def test_a_template_whose_graph_cannot_be_built_is_read_raw(threads: Threads) -> None:
    from agent_runtime.errors import ConfigurationError

    def unbuildable(name: str) -> object:
        raise ConfigurationError(f"cannot build model for {name}")

    broken = Threads(threads.sessions, unbuildable, lambda name: True)
    session = await broken.create(ALICE, thread_id=None, metadata={"graph_id": "writer"})
    assert session.template == "writer" and broken.graph(session) is None
    assert (await broken.view(session)).status == "idle"
