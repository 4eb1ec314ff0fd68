"""Backend-specific behaviour: persistence, sharing between clients, retention, the factory."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from agent_runtime._redis import make_redis
from agent_runtime.errors import BackendError
from agent_runtime.monitoring.usage import MemoryUsageStore, UsageRecord, build_usage_store
from agent_runtime.monitoring.usage import sqlite as usage_sqlite
from agent_runtime.monitoring.usage.redis import RedisUsageStore
from agent_runtime.monitoring.usage.sqlite import SqliteUsageStore
from agent_runtime.settings import Settings

DAY = date(2026, 3, 1)


def rec(**kw) -> UsageRecord:
    base = {
        "tenant": "acme",
        "user": "alice",
        "template": "analyst",
        "model": "offline",
        "day": DAY,
        "input_tokens": 10,
        "output_tokens": 1,
        "cost_usd": 0.1,
    }
    return UsageRecord(**{**base, **kw})


async def test_sqlite_survives_reopen_and_shares_a_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    first, second = SqliteUsageStore(path), SqliteUsageStore(path)
    await asyncio.gather(*(store.add(rec()) for store in (first, second) for _ in range(10)))
    await first.aclose()
    await second.aclose()
    reopened = SqliteUsageStore(path)
    [cell] = await reopened.records()
    assert cell.runs == 20 and cell.input_tokens == 200
    assert cell.cost_usd == pytest.approx(2.0)
    await reopened.aclose()


async def test_sqlite_writes_behind_in_batches_and_reads_its_own_writes(tmp_path: Path) -> None:
    store = SqliteUsageStore(tmp_path / "ledger.sqlite3")
    for i in range(30):
        await store.add(rec(user=f"u{i % 3}"))  # queued: returns before the write
    assert sorted(c.runs for c in await store.records()) == [10, 10, 10]  # waits for its own writes
    other = SqliteUsageStore(tmp_path / "ledger.sqlite3")  # another process sees them committed
    assert sorted(c.runs for c in await other.records()) == [10, 10, 10]
    for _ in range(5):
        await store.add(rec(user="u0"))
    await store.aclose()  # writes what is still queued
    assert sorted(c.runs for c in await other.records()) == [10, 10, 15]
    await other.aclose()


async def test_sqlite_reads_are_not_starved_by_steady_writes(tmp_path: Path) -> None:
    store = SqliteUsageStore(tmp_path / "ledger.sqlite3")
    stop = asyncio.Event()

    async def traffic() -> None:
        while not stop.is_set():
            await store.add(rec())
            await asyncio.sleep(0)

    writer = asyncio.create_task(traffic())
    try:
        await asyncio.sleep(0.05)
        for _ in range(3):  # each read waits only for what was queued before it
            [cell] = await asyncio.wait_for(store.records(), timeout=10)
            assert cell.runs > 0
    finally:
        stop.set()
        await writer
    await store.aclose()
    reopened = SqliteUsageStore(tmp_path / "ledger.sqlite3")
    [cell] = await reopened.records()
    assert cell.runs == store._added and store.lost == 0
    await reopened.aclose()


async def test_sqlite_backlog_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage_sqlite, "MAX_BACKLOG", 4)
    store = SqliteUsageStore(tmp_path / "ledger.sqlite3")
    for _ in range(4):
        await store.add(rec())
    assert not store._queued  # the fourth add waited until the backlog was written
    await store.aclose()
    assert store.lost == 0


async def test_redis_clients_share_counters(redis_url: str) -> None:
    stores = [RedisUsageStore(make_redis(redis_url), prefix="t") for _ in range(3)]
    await asyncio.gather(*(store.add(rec()) for store in stores for _ in range(20)))
    [cell] = await stores[0].records(tenant="acme")
    assert cell.runs == 60
    assert cell.cost_usd == pytest.approx(6.0)
    for store in stores:
        await store.aclose()


async def test_redis_key_layout_and_retention(redis_url: str) -> None:
    store = RedisUsageStore(make_redis(redis_url), prefix="t", retention_days=2)
    await store.add(rec())
    raw = aioredis.from_url(redis_url, decode_responses=True)
    key = "t:usage:d:acme:2026-03-01"
    assert await raw.hget(key, "alice|analyst|offline|runs") == "1"
    assert 2 * 86400 < await raw.ttl(key) <= 3 * 86400
    assert await raw.smembers("t:usage:tenants") == {"acme"}
    await raw.aclose()
    await store.aclose()


async def test_redis_down_is_a_backend_error(fault_redis) -> None:
    store = RedisUsageStore(make_redis(fault_redis.url), prefix="t")
    await store.add(rec())
    fault_redis.kill()
    with pytest.raises(BackendError):
        await store.add(rec())
    with pytest.raises(BackendError):
        await store.records()
    fault_redis.start()
    await store.add(rec())
    [cell] = await store.records()
    assert cell.runs == 2  # appendonly: the first write survived the restart
    await store.aclose()


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
async def test_factory_builds_each_backend(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    kwargs: dict = {"state_backend": backend, "data_dir": tmp_path}
    if backend == "redis":
        kwargs["redis_url"] = request.getfixturevalue("redis_url")
    store = build_usage_store(Settings(**kwargs))
    expected = {"memory": MemoryUsageStore, "sqlite": SqliteUsageStore, "redis": RedisUsageStore}[backend]
    assert isinstance(store, expected)
    await store.add(rec())
    assert len(await store.records()) == 1
    await store.aclose()
    if backend == "sqlite":
        assert (tmp_path / "agent-runtime.sqlite3").exists()
