"""``ResponseStore`` on every store backend (memory, a SQLite file, a real redis-server): owner-only
reads, expiry after ``responses.ttl_s``, and at most ``responses.max_per_user`` kept per user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.server.routes._responses_store import ResponseNotFoundError, ResponseStore
from agent_runtime.settings import RedisSettings, ResponsesSettings
from agent_runtime.store import TenantStore
from agent_runtime.store.confined import StoreScope
from agent_runtime.store.memory import MemoryStore
from agent_runtime.store.redis import RedisStore
from agent_runtime.store.sqlite import open_sqlite_store
from agent_runtime.types import ChatTurn, Principal

ALICE = Principal(tenant="acme", user="alice")
BOB = Principal(tenant="acme", user="bob")
EVE = Principal(tenant="evil", user="alice")
TURNS = [ChatTurn(role="user", content="my name is Ada"), ChatTurn(role="assistant", content="Hi Ada.")]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        self.now += 1.0  # every reading is a second later: stored responses are ordered
        return self.now


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def base(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "memory":
        store: Any = MemoryStore()
    elif request.param == "sqlite":
        store = await open_sqlite_store(tmp_path / "store.sqlite3")
    else:
        store = RedisStore(request.getfixturevalue("redis_url"), RedisSettings())
    yield store
    await store.aclose()


def _store(base: Any, clock: Clock, **settings: Any) -> ResponseStore:
    return ResponseStore(base, ResponsesSettings(**settings), clock=clock)


async def test_only_the_owner_reads_or_deletes_a_response(base: Any) -> None:
    store = _store(base, Clock())
    await store.put(ALICE, "resp_1", {"id": "resp_1"}, TURNS, inputs=1)
    assert (await store.get(ALICE, "resp_1")).conversation == TURNS
    for other in (BOB, EVE):  # same user name in another tenant, another user of the same tenant
        with pytest.raises(ResponseNotFoundError):
            await store.get(other, "resp_1")
        with pytest.raises(ResponseNotFoundError):
            await store.delete(other, "resp_1")
    await store.delete(ALICE, "resp_1")
    with pytest.raises(ResponseNotFoundError):
        await store.get(ALICE, "resp_1")


async def test_no_tenant_store_view_reaches_responses(base: Any) -> None:
    await _store(base, Clock()).put(ALICE, "resp_1", {"id": "resp_1"}, TURNS, inputs=1)
    for scope in (StoreScope("acme", "alice"), StoreScope("acme")):  # the user's view, the tenant admin's
        view = TenantStore(base, scope)
        assert await view.alist_namespaces() == [] and await view.asearch(()) == []


async def test_a_response_expires_after_its_ttl(base: Any) -> None:
    clock = Clock()
    store = _store(base, clock, ttl_s=60)
    await store.put(ALICE, "resp_1", {"id": "resp_1"}, TURNS, inputs=1)
    assert (await store.get(ALICE, "resp_1")).response == {"id": "resp_1"}
    clock.now += 60
    with pytest.raises(ResponseNotFoundError):
        await store.get(ALICE, "resp_1")


async def test_a_user_keeps_at_most_max_per_user_the_oldest_evicted(base: Any) -> None:
    store = _store(base, Clock(), max_per_user=3)
    for n in range(5):
        await store.put(ALICE, f"resp_{n}", {"id": f"resp_{n}"}, TURNS, inputs=1)
    await store.put(BOB, "resp_bob", {"id": "resp_bob"}, TURNS, inputs=1)  # bob's count is his own
    for gone in ("resp_0", "resp_1"):
        with pytest.raises(ResponseNotFoundError):
            await store.get(ALICE, gone)
    assert [(await store.get(ALICE, f"resp_{n}")).response["id"] for n in (2, 3, 4)] == ["resp_2", "resp_3", "resp_4"]
    assert (await store.get(BOB, "resp_bob")).response["id"] == "resp_bob"
