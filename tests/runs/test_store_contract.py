"""One contract for the run record stores: memory, SQLite (a real file) and Redis (a real redis-server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import BackendError
from agent_runtime.runs import Run, RunFilter, RunRecordStore
from agent_runtime.runs.postgres import PostgresRunRecordStore
from agent_runtime.runs.redis import RedisRunRecordStore
from agent_runtime.runs.sqlite import SQLiteRunRecordStore
from agent_runtime.settings import PostgresSettings
from agent_runtime.types import Principal
from tests.backends import STATE_BACKENDS, build_store

FAST_PG = PostgresSettings(connect_timeout=1, pool_timeout=1)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


Factory = Callable[..., Awaitable[RunRecordStore]]


@pytest.fixture(params=STATE_BACKENDS)
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    made: list[RunRecordStore] = []

    async def make(**options: Any) -> RunRecordStore:
        directory = tmp_path / f"s{len(made)}"  # a fresh SQLite file per store, as before
        directory.mkdir()
        store: RunRecordStore = build_store("run_records", request.param, request, directory, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()


def run(run_id: str, *, tenant: str = "acme", status: str = "pending", at: float = 0.0, **fields: Any) -> Run:
    created = at or time.time()
    ended = created if status not in ("pending", "running") else None
    principal = Principal(tenant=tenant, user="ann", scopes=frozenset({"agents:run"}))
    return Run.model_validate(
        {"run_id": run_id, "tenant": tenant, "user": "ann", "template": "assistant", "input": "hi", "status": status}
        | {"created_at": created, "ended_at": ended, "principal": principal}
        | fields
    )


async def test_create_get_roundtrip_and_tenant_confinement(make_store: Factory) -> None:
    store = await make_store()
    original = run("run_1", session_id="ses_1", metadata={"client": {"k": "v"}})
    await store.create(original)
    got = await store.get("run_1", tenant="acme")
    assert got == original and got is not None and got.principal is not None
    assert got.principal.scopes == frozenset({"agents:run"})
    assert await store.get("run_1", tenant="other") is None
    assert await store.get("nope") is None


async def test_transition_is_compare_and_set(make_store: Factory) -> None:
    store = await make_store()
    await store.create(run("run_1"))
    taken = await store.transition("run_1", ("pending",), status="running", worker="w1", attempts=1)
    assert taken is not None and taken.status == "running" and taken.worker == "w1"
    assert await store.transition("run_1", ("pending",), status="running", worker="w2") is None
    assert await store.transition("missing", ("pending",), status="running") is None
    done = await store.transition("run_1", ("running",), status="success", output="ok", usage={"total_tokens": 3})
    assert done is not None
    stored = await store.get("run_1")
    assert stored is not None and stored.status == "success" and stored.output == "ok" and stored.worker == "w1"


async def test_only_one_of_concurrent_claims_wins(make_store: Factory) -> None:
    store = await make_store()
    await store.create(run("run_1"))
    claims = await asyncio.gather(
        *(store.transition("run_1", ("pending",), status="running", worker=f"w{i}") for i in range(8))
    )
    assert sum(claim is not None for claim in claims) == 1


async def test_pending_oldest_first_and_leaves_on_claim(make_store: Factory) -> None:
    store = await make_store()
    base = time.time()
    for index in (2, 0, 1):
        await store.create(run(f"run_{index}", at=base + index))
    await store.create(run("run_done", status="success", at=base))
    assert [r.run_id for r in await store.pending()] == ["run_0", "run_1", "run_2"]
    await store.transition("run_1", ("pending",), status="running")
    assert [r.run_id for r in await store.pending(limit=5)] == ["run_0", "run_2"]
    assert [r.run_id for r in await store.pending(limit=1)] == ["run_0"]


async def test_find_filters_and_paginates_newest_first(make_store: Factory) -> None:
    store = await make_store()
    base = time.time()
    for index in range(6):
        fields = {"session_id": "ses_a" if index % 2 else "ses_b", "template": "writer" if index < 3 else "assistant"}
        await store.create(run(f"run_{index}", status="success" if index % 3 else "error", at=base + index, **fields))
    await store.create(run("run_x", tenant="other", status="success", at=base + 10))
    ids = lambda runs: [r.run_id for r in runs]  # noqa: E731
    assert ids(await store.find(RunFilter(tenant="acme"))) == [f"run_{i}" for i in range(5, -1, -1)]
    assert ids(await store.find(RunFilter(tenant="acme", limit=2, offset=1))) == ["run_4", "run_3"]
    assert ids(await store.find(RunFilter(tenant="acme", session_id="ses_a"))) == ["run_5", "run_3", "run_1"]
    assert ids(await store.find(RunFilter(tenant="acme", status="error"))) == ["run_3", "run_0"]
    assert ids(await store.find(RunFilter(tenant="acme", template="writer", status="success"))) == ["run_2", "run_1"]
    assert ids(await store.find(RunFilter(tenant="acme", session_id="ses_a", limit=1, offset=2))) == ["run_1"]
    assert ids(await store.find(RunFilter(tenant="other"))) == ["run_x"]
    assert await store.find(RunFilter(tenant="nobody")) == []


async def test_cap_per_tenant_drops_oldest_finished_never_active(make_store: Factory) -> None:
    store = await make_store(max_per_tenant=2)
    base = time.time()
    await store.create(run("run_pending", at=base))
    for index in range(4):
        await store.create(run(f"run_{index}", status="success", at=base + 1 + index))
    await store.create(run("run_other", tenant="other", status="success", at=base))
    left = [r.run_id for r in await store.find(RunFilter(tenant="acme"))]
    assert left == ["run_3", "run_2", "run_pending"]
    assert await store.get("run_0") is None and await store.get("run_other") is not None


async def test_finished_runs_expire_after_ttl_active_ones_stay(
    make_store: Factory, request: pytest.FixtureRequest
) -> None:
    clock = Clock()
    redis = "redis" in request.node.callspec.id
    store = await make_store(ttl_s=0.3, **({} if redis else {"clock": clock}))
    await store.create(run("run_active", status="running", at=clock.now))
    await store.create(run("run_done", status="pending", at=clock.now))
    await store.transition("run_done", ("pending",), status="success", ended_at=clock.now)
    assert await store.get("run_done") is not None
    clock.now += 1.0
    deadline = time.monotonic() + 5
    while await store.get("run_done") is not None:  # Redis expires keys by its own clock
        assert redis and time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert [r.run_id for r in await store.find(RunFilter(tenant="acme"))] == ["run_active"]
    assert await store.get("run_active") is not None


async def test_unreachable_backend_is_a_typed_error(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    store = RedisRunRecordStore("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(BackendError):
            await store.get("run_1")
    finally:
        await store.aclose()
    postgres = PostgresRunRecordStore("postgresql://postgres@127.0.0.1:1/none", FAST_PG)
    try:
        with pytest.raises(BackendError):
            await postgres.get("run_1")
    finally:
        await postgres.aclose()
    bad = tmp_path / "dir.sqlite3"
    bad.mkdir()
    sqlite = SQLiteRunRecordStore(bad)
    with pytest.raises(BackendError):
        await sqlite.get("run_1")


async def test_transition_match_guards_on_fields(make_store: Factory) -> None:
    store = await make_store()
    await store.create(run("run_1", status="running", worker="w1", lease_until=100.0))
    assert await store.transition("run_1", ("running",), match={"worker": "w2"}, lease_until=200.0) is None
    renewed = await store.transition("run_1", ("running",), match={"worker": "w1"}, lease_until=200.0)
    assert renewed is not None and renewed.lease_until == 200.0
    stale = {"worker": "w1", "lease_until": 100.0}  # a claim based on an old read loses
    assert await store.transition("run_1", ("running",), match=stale, worker="w3") is None
    got = await store.get("run_1")
    assert got is not None and got.worker == "w1" and got.lease_until == 200.0


async def test_expired_lists_running_runs_whose_lease_ended(make_store: Factory) -> None:
    store = await make_store()
    await store.create(run("run_late", status="running", worker="w1", lease_until=50.0))
    await store.create(run("run_later", status="running", worker="w1", lease_until=80.0))
    await store.create(run("run_live", status="running", worker="w2", lease_until=500.0))
    await store.create(run("run_foreground", status="running", worker="w3"))  # no lease: not a queued run
    await store.create(run("run_waiting"))
    assert [r.run_id for r in await store.expired(100.0)] == ["run_late", "run_later"]
    assert [r.run_id for r in await store.expired(100.0, limit=1)] == ["run_late"]
    await store.transition("run_late", ("running",), status="success", lease_until=None, ended_at=time.time())
    await store.transition("run_later", ("running",), match={"worker": "w1"}, lease_until=600.0)
    assert await store.expired(100.0) == []
    assert [r.run_id for r in await store.expired(550.0)] == ["run_live"]


async def test_delete_removes_the_record_from_every_index(make_store: Factory) -> None:
    store = await make_store()
    await store.create(run("run_gone", session_id="ses_1"))
    await store.create(run("run_held", status="running", worker="w1", lease_until=50.0, at=1.0))
    await store.create(run("run_kept", at=2.0))
    assert await store.delete("run_gone") and await store.delete("run_held")
    assert not await store.delete("run_gone")
    assert await store.get("run_gone") is None
    assert [r.run_id for r in await store.pending()] == ["run_kept"]
    assert await store.expired(100.0) == []
    assert [r.run_id for r in await store.find(RunFilter(tenant="acme"))] == ["run_kept"]
    assert await store.transition("run_gone", ("pending",), status="running") is None


async def test_active_lists_a_sessions_pending_and_running_runs(make_store: Factory) -> None:
    store = await make_store()
    await store.create(run("run_wait", session_id="ses_1"))
    await store.create(run("run_busy", session_id="ses_1", status="running", worker="w1", lease_until=50.0))
    await store.create(run("run_done", session_id="ses_1", status="success", ended_at=time.time()))
    await store.create(run("run_else", session_id="ses_2"))
    await store.create(run("run_theirs", tenant="other", session_id="ses_1"))
    assert sorted(r.run_id for r in await store.active("acme", "ses_1")) == ["run_busy", "run_wait"]
    await store.transition("run_busy", ("running",), status="success", ended_at=time.time())
    await store.delete("run_else")
    assert [r.run_id for r in await store.active("acme", "ses_1")] == ["run_wait"]
    assert await store.active("acme", "ses_2") == []
    await store.transition("run_wait", ("pending",), status="running")
    assert [r.status for r in await store.active("acme", "ses_1")] == ["running"]
