"""Double-texting of foreground runs and cancels in the process that executes the run (real runtime on
SQLite): ``prepare`` waits for or cancels a session's background runs before a foreground run; a
foreground run cannot be interrupted from another request; cancel ``rollback`` of a run executing here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.errors import RunNotFoundError, SessionBusyError
from agent_runtime.runs.recorder import new_run
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from tests.helpers import until
from tests.runs.test_multitask import ACME, RUNS, SLOW, ctx, dispatcher, run_ids_in_thread, running, session


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(state_backend="sqlite", data_dir=tmp_path, offline_token_latency_ms=30, runs=RUNS)
    rt = await Runtime.create(settings)
    await rt.start_dispatcher()
    yield rt
    await rt.aclose()


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
async def test_a_foreground_run_cancels_the_sessions_background_run_first(runtime: Runtime, strategy: str) -> None:
    d, sid = dispatcher(runtime), await session(runtime)
    active = await running(d, await d.submit(ctx(sid)))
    await until(lambda: _has(runtime, sid, active.run_id), "the background run's first checkpoint")
    foreground = ctx(sid, "now this")
    await d.prepare(foreground, strategy, timeout_s=30)  # type: ignore[arg-type]
    result = await runtime.executor.execute_with_retry(foreground)
    assert result.status == "completed"
    if strategy == "rollback":
        with pytest.raises(RunNotFoundError):
            await d.get(active.run_id, "acme")
        assert active.run_id not in await run_ids_in_thread(runtime, sid)
    else:
        assert (await d.get(active.run_id, "acme")).status == "cancelled"


async def _has(rt: Runtime, sid: str, run_id: str) -> bool:
    return run_id in await run_ids_in_thread(rt, sid)


async def test_reject_and_enqueue_for_a_foreground_run(runtime: Runtime) -> None:
    d, sid = dispatcher(runtime), await session(runtime)
    active = await d.submit(ctx(sid))
    with pytest.raises(SessionBusyError):
        await d.prepare(ctx(sid, "hello"), "reject", timeout_s=30)
    await d.prepare(ctx(sid, "hello"), "enqueue", timeout_s=30)  # returns once the session is idle
    assert (await d.get(active.run_id, "acme")).status == "success"
    await d.prepare(ctx(sid, "hello"), None, timeout_s=30)  # unset: nothing to do


async def test_a_foreground_run_is_not_interrupted_from_another_request(runtime: Runtime) -> None:
    d, sid = dispatcher(runtime), await session(runtime)
    foreground = new_run(ctx(sid, "a foreground run"), status="running", background=False, worker="elsewhere:1")
    await d.store.create(foreground)
    for strategy in ("interrupt", "rollback"):
        with pytest.raises(SessionBusyError, match="foreground"):
            await d.submit(ctx(sid, "hello"), multitask=strategy)  # type: ignore[arg-type]
    assert (await d.store.get(foreground.run_id)) is not None
    queued = await d.submit(ctx(sid, "hello"), multitask="enqueue")  # waits for it instead
    assert (await d.get(queued.run_id, "acme")).status == "pending"
    await d.store.transition(foreground.run_id, ("running",), status="success", ended_at=foreground.created_at + 1)
    assert (await d.wait(queued.run_id, "acme", timeout_s=30)).status == "success"


async def test_cancel_rollback_of_a_run_executing_here(runtime: Runtime) -> None:
    d, sid = dispatcher(runtime), await session(runtime)
    active = await running(d, await d.submit(ctx(sid, SLOW)))
    await until(lambda: _has(runtime, sid, active.run_id), "the run's first checkpoint")
    answered = await d.cancel(active.run_id, ACME.tenant, "rollback")
    assert answered.status == "cancelled"
    assert await d.store.get(active.run_id) is None
    assert active.run_id not in await run_ids_in_thread(runtime, sid)
