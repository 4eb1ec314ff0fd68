"""The in-process run event log: order, resume after an id, followers woken, bounds (events per run,
runs kept, ttl with an injected clock)."""

from __future__ import annotations

import asyncio

import pytest

from agent_runtime.errors import EventsExpiredError
from agent_runtime.runs.events import MemoryRunEventLog
from agent_runtime.types import StreamEvent


def token(run_id: str, text: str) -> StreamEvent:
    return StreamEvent(type="token", run_id=run_id, data={"text": text})


async def texts(log: MemoryRunEventLog, run_id: str, **options: object) -> list[str]:
    return [logged.event.text async for logged in log.read(run_id, **options)]  # type: ignore[arg-type]


async def test_events_come_back_in_order_and_resume_after_an_id() -> None:
    log = MemoryRunEventLog()
    ids = [await log.append("run_a", token("run_a", t)) for t in "abc"]
    await log.append("run_b", token("run_b", "x"))
    await log.close("run_a")
    assert await texts(log, "run_a") == ["a", "b", "c"]
    assert await texts(log, "run_a", after=ids[0]) == ["b", "c"]
    assert await texts(log, "run_b", follow=False) == ["x"]


async def test_a_follower_is_woken_by_appends_and_ends_at_close() -> None:
    log = MemoryRunEventLog()
    follower = asyncio.create_task(texts(log, "run_a"))
    await asyncio.sleep(0)  # the follower now waits on an empty log
    await log.append("run_a", token("run_a", "a"))
    await log.append("run_a", token("run_a", "b"))
    await log.close("run_a")
    assert await asyncio.wait_for(follower, 5) == ["a", "b"]


async def test_bounds_events_per_run_and_runs_kept() -> None:
    log = MemoryRunEventLog(max_events=2, max_runs=2)
    first = await log.append("run_a", token("run_a", "a"))
    await log.append("run_a", token("run_a", "b"))
    second = await log.append("run_a", token("run_a", "c"))
    await log.append("run_a", token("run_a", "d"))
    assert await texts(log, "run_a", follow=False) == ["c", "d"]
    assert await texts(log, "run_a", after=second, follow=False) == ["d"]
    with pytest.raises(EventsExpiredError):  # "b" left the window: the client must not miss it silently
        await texts(log, "run_a", after=first, follow=False)
    await log.append("run_b", token("run_b", "x"))
    await log.append("run_c", token("run_c", "y"))  # a third run: the oldest one's events go
    assert await texts(log, "run_a", follow=False) == []
    assert await texts(log, "run_c", follow=False) == ["y"]


async def test_logs_expire_after_their_ttl() -> None:
    now = [0.0]
    log = MemoryRunEventLog(ttl_s=60, clock=lambda: now[0])
    await log.append("run_a", token("run_a", "a"))
    now[0] = 59
    assert await texts(log, "run_a", follow=False) == ["a"]
    now[0] = 200
    assert await texts(log, "run_a", follow=False) == []
    await log.append("run_b", token("run_b", "b"))
    await log.delete("run_b")
    assert await texts(log, "run_b", follow=False) == []
