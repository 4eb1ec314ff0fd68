"""Agents remember across threads: a ``long_term`` template's tools write the store in one session
and read it in another, confined to the run's owner (on every backend, through the real executor)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.errors import ConfigurationError
from agent_runtime.runtime import Runtime
from agent_runtime.store import StoreScope, TenantStore
from agent_runtime.types import AgentContext, Principal
from tests.store.conftest import BACKENDS, backend_settings

ALICE = Principal(tenant="acme", user="alice", scopes=frozenset({"agents:run:*", "sessions"}))
BOB = Principal(tenant="acme", user="bob", scopes=frozenset({"agents:run:*", "sessions"}))
EVE = Principal(tenant="evil", user="alice", scopes=frozenset({"agents:run:*", "sessions"}))
EXAMPLE = Path(__file__).parents[2] / "docs" / "templates" / "companion.yaml"
TEMPLATE = {"name": "bare", "memory": "long_term", "tools": ["remember", "recall"]}


@pytest.fixture(params=BACKENDS)
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = await Runtime.create(backend_settings(request.param, tmp_path, request), with_event_bus=False)
    rt.factory.load_templates(EXAMPLE)  # the example template of the docs
    yield rt
    await rt.aclose()


async def ask(rt: Runtime, who: Principal, text: str, session: str) -> str:
    await rt.sessions.create_session(who.user, tenant=who.tenant, session_id=session)
    context = AgentContext(input=text, template="companion", principal=who, session_id=session)
    result = await rt.executor.execute_async(context)
    assert result.status == "completed", result
    return result.output


async def test_a_fact_remembered_in_one_thread_is_recalled_in_another(runtime: Runtime) -> None:
    said = await ask(runtime, ALICE, "Please remember that my favourite colour is teal", "thread-1")
    assert "teal" in said
    recalled = await ask(runtime, ALICE, "What do you remember about me?", "thread-2")
    assert "favourite colour is teal" in recalled
    item = await TenantStore(runtime.store, StoreScope("acme", "alice")).asearch(("memories",))
    assert [i.value["text"] for i in item] == ["my favourite colour is teal"]
    # same tenant, other user; other tenant, same user name: neither recalls it
    assert "teal" not in await ask(runtime, BOB, "What do you remember about me?", "thread-3")
    assert "teal" not in await ask(runtime, EVE, "What do you remember about me?", "thread-4")


async def test_streamed_runs_use_the_same_memory(runtime: Runtime) -> None:
    await ask(runtime, ALICE, "remember that I live in Lisbon", "thread-1")
    context = AgentContext(input="recall what you know", template="companion", principal=ALICE)
    events = [e async for e in runtime.executor.execute_stream(context)]
    final = events[-1]
    assert final.type == "final" and "Lisbon" in final.data["output"]


async def test_a_long_term_template_without_a_store_is_refused() -> None:
    from agent_runtime.agents.factory import AgentFactory

    factory = AgentFactory()
    with pytest.raises(ConfigurationError, match="no store"):
        factory.create_agent(TEMPLATE)
