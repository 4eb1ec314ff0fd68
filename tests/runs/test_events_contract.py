"""One contract for the run event logs: memory, SQLite (a real file), Redis (a real redis-server) and
PostgreSQL (the machine's server). Two log objects on one backend stand for two processes; the last
tests use a real second process."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import BackendError, EventsExpiredError
from agent_runtime.runs.events import MemoryRunEventLog, RunEventLog
from agent_runtime.runs.events.redis import RedisRunEventLog
from agent_runtime.settings import RedisSettings
from agent_runtime.types import StreamEvent
from tests.backends import SHARED_BACKENDS, STATE_BACKENDS, backend_settings, backend_url, build_store
from tests.conftest import RedisServer
from tests.helpers import until

Factory = Callable[..., Awaitable[RunEventLog]]
WAIT_S = 10.0


async def _logs(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    made: list[RunEventLog] = []

    async def make(**options: Any) -> RunEventLog:
        log: RunEventLog = build_store("run_events", backend, request, tmp_path, **options)
        made.append(log)
        return log

    yield make
    for log in made:
        await log.aclose()


@pytest.fixture(params=STATE_BACKENDS)
async def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    async for make in _logs(request.param, request, tmp_path):
        yield make


@pytest.fixture(params=SHARED_BACKENDS)
async def make_shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """Logs on a backend that several processes share: each log made stands for another process."""
    async for make in _logs(request.param, request, tmp_path):
        yield make


def token(run_id: str, text: str) -> StreamEvent:
    return StreamEvent(type="token", run_id=run_id, data={"text": text})


async def texts(log: RunEventLog, run_id: str, **options: Any) -> list[str]:
    async def collect() -> list[str]:
        return [logged.event.text async for logged in log.read(run_id, **options)]

    return await asyncio.wait_for(collect(), WAIT_S)


async def test_events_come_back_in_order_and_resume_after_an_id(make_log: Factory) -> None:
    log = await make_log()
    ids = [await log.append("run_a", token("run_a", t)) for t in "abc"]
    await log.append("run_b", token("run_b", "x"))
    await log.close("run_a")
    assert len(set(ids)) == 3
    assert await texts(log, "run_a") == ["a", "b", "c"]
    assert [logged.id async for logged in log.read("run_a")] == ids
    assert await texts(log, "run_a", after=ids[0]) == ["b", "c"]
    assert await texts(log, "run_a", after=ids[2]) == []
    assert await texts(log, "run_b", follow=False) == ["x"]  # runs don't mix, and without follow: what is there


async def test_event_fields_round_trip(make_log: Factory) -> None:
    log = await make_log()
    event = StreamEvent(type="tool_call", run_id="run_a", step="plan", data={"name": "search", "args": {"q": [1, 2]}})
    await log.append("run_a", event)
    assert [logged.event async for logged in log.read("run_a", follow=False)] == [event]


async def test_unknown_run_yields_nothing(make_log: Factory) -> None:
    log = await make_log()
    assert await texts(log, "run_nope", follow=False) == []
    await log.close("run_never_streamed")
    assert await texts(log, "run_never_streamed") == []


async def test_a_malformed_event_id_is_refused(make_log: Factory) -> None:
    log = await make_log()
    await log.append("run_a", token("run_a", "a"))
    with pytest.raises(EventsExpiredError):
        await texts(log, "run_a", after="not-an-id", follow=False)


async def test_a_follower_is_woken_by_appends_and_ends_at_close(make_log: Factory) -> None:
    log = await make_log()
    await follow_while_appending(log, log)


async def test_a_follower_is_woken_by_another_process_appends(make_shared: Factory) -> None:
    reader, writer = await make_shared(), await make_shared()
    await follow_while_appending(reader, writer)


async def follow_while_appending(reader: RunEventLog, writer: RunEventLog) -> None:
    got: list[str] = []

    async def follow() -> None:
        async for logged in reader.read("run_a"):
            got.append(logged.event.text)

    follower = asyncio.create_task(follow())
    try:
        await writer.append("run_a", token("run_a", "a"))

        async def first() -> bool:
            return len(got) == 1

        await until(first, "the first event", timeout=WAIT_S)  # the follower now waits for more
        await writer.append("run_a", token("run_a", "b"))
        await writer.append("run_a", token("run_a", "c"))
        await writer.close("run_a")
        await asyncio.wait_for(follower, WAIT_S)
    finally:
        follower.cancel()
    assert got == ["a", "b", "c"]


async def test_bound_keeps_the_newest_events(make_log: Factory) -> None:
    log = await make_log(max_events=2)
    first = await log.append("run_a", token("run_a", "a"))
    await log.append("run_a", token("run_a", "b"))
    second = await log.append("run_a", token("run_a", "c"))
    await log.append("run_a", token("run_a", "d"))
    assert await texts(log, "run_a", follow=False) == ["c", "d"]
    assert await texts(log, "run_a", after=second, follow=False) == ["d"]
    with pytest.raises(EventsExpiredError):  # "b" left the window: the client must not miss it silently
        await texts(log, "run_a", after=first, follow=False)


async def test_a_follower_that_fell_behind_the_window_is_told(make_shared: Factory) -> None:
    reader, writer = await make_shared(max_events=3), await make_shared(max_events=3)
    first = await writer.append("run_a", token("run_a", "a"))
    for text in "bcdefgh":
        await writer.append("run_a", token("run_a", text))
    with pytest.raises(EventsExpiredError):
        await texts(reader, "run_a", after=first)


async def test_appends_while_the_client_handles_an_event_are_not_missed(make_log: Factory) -> None:
    log = await make_log()
    await log.append("run_a", token("run_a", "a"))
    follower = log.read("run_a")
    assert (await asyncio.wait_for(anext(follower), WAIT_S)).event.text == "a"
    await log.append("run_a", token("run_a", "b"))  # the client is busy with "a" meanwhile
    await log.close("run_a")

    async def rest() -> list[str]:
        return [logged.event.text async for logged in follower]

    assert await asyncio.wait_for(rest(), WAIT_S) == ["b"]


async def test_a_slow_follower_overtaken_by_the_window_is_told(make_log: Factory) -> None:
    log = await make_log(max_events=3)
    await log.append("run_a", token("run_a", "a"))
    follower = log.read("run_a")
    first = await asyncio.wait_for(anext(follower), WAIT_S)
    assert first.event.text == "a"
    for text in "bcdef":  # while the client has not asked for more, "b" and "c" leave the window
        await log.append("run_a", token("run_a", text))
    with pytest.raises(EventsExpiredError):
        await asyncio.wait_for(anext(follower), WAIT_S)
    await follower.aclose()  # type: ignore[attr-defined]  # an async generator


async def test_logs_expire_after_their_ttl(make_log: Factory) -> None:
    log = await make_log(ttl_s=0.2)
    await log.append("run_a", token("run_a", "a"))

    async def gone() -> bool:
        return await texts(log, "run_a", follow=False) == []

    await until(gone, "the run's events to expire", timeout=WAIT_S)
    kept = await make_log(ttl_s=3600)
    await kept.append("run_b", token("run_b", "b"))
    assert await texts(kept, "run_b", follow=False) == ["b"]


async def test_delete_forgets_a_run(make_log: Factory) -> None:
    log = await make_log()
    await log.append("run_a", token("run_a", "a"))
    await log.append("run_b", token("run_b", "b"))
    await log.delete("run_a")
    await log.delete("run_never")
    assert await texts(log, "run_a", follow=False) == []
    assert await texts(log, "run_b", follow=False) == ["b"]


async def test_large_events(make_log: Factory) -> None:
    log = await make_log()
    big = "x" * 2_000_000
    await log.append("run_a", token("run_a", big))
    await log.append("run_a", token("run_a", "after"))
    assert await texts(log, "run_a", follow=False) == [big, "after"]


async def test_more_events_than_a_page(make_log: Factory) -> None:
    log = await make_log()
    for index in range(250):
        await log.append("run_a", token("run_a", str(index)))
    await log.close("run_a")
    assert await texts(log, "run_a") == [str(index) for index in range(250)]


async def test_concurrent_appends_get_distinct_ordered_ids(make_log: Factory) -> None:
    await log_concurrently([await make_log()])


async def test_concurrent_appends_of_two_processes(make_shared: Factory) -> None:
    await log_concurrently([await make_shared(), await make_shared()])


async def log_concurrently(logs: list[RunEventLog]) -> None:
    writes = [logs[i % len(logs)].append("run_a", token("run_a", str(i))) for i in range(60)]
    ids = await asyncio.gather(*writes)
    assert len(set(ids)) == 60
    read = [(logged.id, logged.event.text) async for logged in logs[-1].read("run_a", follow=False)]
    assert dict(read) == {event_id: str(i) for i, event_id in enumerate(ids)}  # each event under its own id
    middle = read[29][0]
    assert await texts(logs[0], "run_a", after=middle, follow=False) == [text for _, text in read[30:]]


def test_memory_log_bounds_the_runs_it_keeps() -> None:
    async def scenario() -> None:
        log = MemoryRunEventLog(max_runs=2)
        await log.append("run_a", token("run_a", "a"))
        await log.append("run_b", token("run_b", "x"))
        await log.append("run_c", token("run_c", "y"))  # a third run: the oldest one's events go
        assert await texts(log, "run_a", follow=False) == []
        assert await texts(log, "run_c", follow=False) == ["y"]

    asyncio.run(scenario())


async def test_many_followers_one_watcher(make_shared: Factory, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Many clients following runs: one watcher per process waits for them all, and on Redis they do not
    take the pool (2 connections here) from the worker appending their events."""
    backend = request.node.callspec.params["make_shared"]
    tight = backend_settings(backend, request, tmp_path, redis=RedisSettings(max_connections=2, pool_timeout=1.0))
    reader, writer = await make_shared(settings=tight), await make_shared(settings=tight)
    run_ids = [f"run_{index}" for index in range(30)]
    followers = [asyncio.create_task(texts(reader, run_id)) for run_id in run_ids]
    try:

        async def all_waiting() -> bool:
            return len(reader._waiters) == len(run_ids)  # type: ignore[attr-defined]  # white box: the watcher's

        await until(all_waiting, "every follower to wait", timeout=WAIT_S)
        for run_id in run_ids:
            await writer.append(run_id, token(run_id, run_id))
            await writer.close(run_id)
        assert await asyncio.gather(*followers) == [[run_id] for run_id in run_ids]
    finally:
        for follower in followers:
            follower.cancel()


@pytest.mark.redis
async def test_redis_outage_is_a_backend_error_and_passes(fault_redis: RedisServer) -> None:
    """A log on a dead server fails fast with ``BackendError`` (no hang), and works again once it is back."""
    fast = RedisSettings(socket_timeout=0.5, connect_timeout=0.5, pool_timeout=0.5)
    log = RedisRunEventLog(fault_redis.url, fast, recheck_s=0.2)
    try:
        await log.append("run_a", token("run_a", "a"))
        follower = asyncio.create_task(texts(log, "run_a"))
        fault_redis.kill()
        with pytest.raises(BackendError):
            await log.append("run_a", token("run_a", "b"))
        with pytest.raises(BackendError):
            await texts(log, "run_a", follow=False)
        with pytest.raises(BackendError):  # a follower is told too, it does not wait forever
            await follower
        fault_redis.restart()
        await log.append("run_a", token("run_a", "c"))
        assert await texts(log, "run_a", follow=False) == ["a", "c"]  # appendonly: "a" survived the restart
    finally:
        await log.aclose()


def stored_runs(backend: str, url: str) -> list[tuple[str, ...]]:
    """The run ids in the tables (headers, then events), read with the engine's own client."""
    prefix = "ar_" if backend == "postgres" else ""
    queries = [f"SELECT run_id FROM {prefix}run_event_logs", f"SELECT DISTINCT run_id FROM {prefix}run_events"]
    if backend == "postgres":
        import psycopg

        with psycopg.connect(url) as conn:
            return [tuple(sorted(r for (r,) in conn.execute(q).fetchall())) for q in queries]
    with sqlite3.connect(Path(url.removeprefix("sqlite:///")).with_name("run_events.sqlite3")) as db:
        return [tuple(sorted(r for (r,) in db.execute(q).fetchall())) for q in queries]


@pytest.mark.parametrize("backend", [p for p in SHARED_BACKENDS if p.id != "redis"])
async def test_a_sweep_deletes_the_rows_of_expired_runs(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Redis expires its keys itself; the tables are swept, by appends (every ``sweep_s``) or ``sweep``."""
    now = [time.time()]
    log = build_store("run_events", backend, request, tmp_path, ttl_s=60, sweep_s=3600, clock=lambda: now[0])
    try:
        await log.append("run_old", token("run_old", "a"))
        now[0] += 30
        await log.append("run_new", token("run_new", "b"))
        now[0] += 40  # run_old was last written 70 s ago, run_new 40 s
        assert await log.sweep() == 1
        assert stored_runs(backend, backend_url(backend, request, tmp_path)) == [("run_new",), ("run_new",)]
        log.sweep_s = 10
        now[0] += 100
        await log.append("run_newest", token("run_newest", "c"))  # starts a sweep in the background
        await log.aclose()  # which closing waits for
        assert stored_runs(backend, backend_url(backend, request, tmp_path)) == [("run_newest",), ("run_newest",)]
    finally:
        await log.aclose()


_WRITER = """
import asyncio, sys
from agent_runtime.backends import build
from agent_runtime.settings import Settings
from agent_runtime.settings import RedisSettings, Settings
from agent_runtime.types import StreamEvent

async def main(url: str, count: int) -> None:
    log = build("run_events", Settings(state_url=url))
    for index in range(count):
        await log.append("run_x", StreamEvent(type="token", run_id="run_x", data={"text": str(index)}))
    await log.close("run_x")
    await log.aclose()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


@pytest.mark.parametrize("backend", SHARED_BACKENDS)
async def test_a_run_streamed_by_another_process_is_joined(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """What two ``serve`` processes need: a worker process appends, this one follows and resumes."""
    reader: RunEventLog = build_store("run_events", backend, request, tmp_path)
    got: list[str] = []
    ids: list[str] = []

    async def follow() -> None:
        async for logged in reader.read("run_x"):
            got.append(logged.event.text)
            ids.append(logged.id)

    follower = asyncio.create_task(follow())
    try:
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WRITER, backend_url(backend, request, tmp_path), "120"
        )
        assert await asyncio.wait_for(writer.wait(), 60) == 0
        await asyncio.wait_for(follower, WAIT_S)
        assert got == [str(index) for index in range(120)]
        assert await texts(reader, "run_x", after=ids[99]) == [str(index) for index in range(100, 120)]
    finally:
        follower.cancel()
        await reader.aclose()
