"""The scheduler: each tick fires exactly once across three schedulers sharing one backend, with a moved clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent_runtime.crons import CronScheduler, CronStore, Schedule, next_tick
from agent_runtime.crons.memory import MemoryCronStore
from agent_runtime.errors import AuthenticationError
from agent_runtime.runs.queue.base import QueueFullError
from agent_runtime.types import Principal
from tests.backends import STATE_BACKENDS, build_store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()
"""A Sunday noon, UTC: every test starts its clock here."""


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Runs:
    """What the schedulers started: (cron_id, tick) pairs, in order."""

    def __init__(self) -> None:
        self.started: list[tuple[str, float]] = []

    async def fire(self, schedule: Schedule, tick_at: float) -> str:
        await asyncio.sleep(0)  # let the other schedulers interleave
        self.started.append((schedule.cron_id, tick_at))
        return f"run_{len(self.started)}"


@pytest.fixture(params=STATE_BACKENDS)
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[CronStore]]:
    """Three clients of one backend, as three processes would hold (one shared object for memory)."""
    first: CronStore = build_store("crons", request.param, request, tmp_path)
    made = (
        [first] * 3
        if isinstance(first, MemoryCronStore)
        else [first] + [build_store("crons", request.param, request, tmp_path) for _ in range(2)]
    )
    yield made
    for store in set(made):
        await store.aclose()


def every_five_minutes(cron_id: str = "c1", **fields: object) -> Schedule:
    principal = Principal(tenant="acme", user="ann", scopes=frozenset({"agents:run:*"}))
    values = {"cron_id": cron_id, "tenant": "acme", "user": "ann", "principal": principal, "template": "writer"}
    values |= {"input": "report", "schedule": "*/5 * * * *", "next_run_at": next_tick("*/5 * * * *", "UTC", T0)}
    return Schedule.model_validate(values | fields)


def schedulers(stores: list[CronStore], runs: Runs, clock: Clock) -> list[CronScheduler]:
    return [CronScheduler(store, runs.fire, clock=clock) for store in stores]


async def pass_all(fleet: list[CronScheduler]) -> int:
    won = await asyncio.gather(*(s.run_due() for s in fleet))
    return sum(len(w) for w in won)


async def test_each_tick_fires_once_across_three_schedulers(stores: list[CronStore]) -> None:
    runs, clock = Runs(), Clock()
    await stores[0].create(every_five_minutes())
    fleet = schedulers(stores, runs, clock)
    assert await pass_all(fleet) == 0  # 12:00 itself is not after 12:00: nothing due yet
    for minute in range(1, 16):
        clock.now = T0 + minute * 60
        for _ in range(2):  # every scheduler passes twice a minute
            await pass_all(fleet)
    assert runs.started == [("c1", T0 + 300), ("c1", T0 + 600), ("c1", T0 + 900)]
    stored = await stores[1].get("c1")
    assert stored is not None and stored.next_run_at == T0 + 1200
    assert stored.last_tick_at == T0 + 900 and stored.last_run_id == "run_3" and stored.last_error is None


async def test_ticks_missed_during_downtime_fire_once(stores: list[CronStore]) -> None:
    runs, clock = Runs(), Clock(T0 + 3 * 3600 + 30)  # three hours down: 36 ticks missed
    await stores[0].create(every_five_minutes())
    fleet = schedulers(stores, runs, clock)
    await pass_all(fleet)
    await pass_all(fleet)
    assert runs.started == [("c1", T0 + 300)]
    stored = await stores[0].get("c1")
    assert stored is not None and stored.next_run_at == T0 + 3 * 3600 + 300  # the next tick after now


async def test_end_time_stops_the_schedule(stores: list[CronStore]) -> None:
    runs, clock = Runs(), Clock(T0 + 300)
    await stores[0].create(every_five_minutes(end_time=T0 + 400))
    fleet = schedulers(stores, runs, clock)
    await pass_all(fleet)
    clock.now = T0 + 3600
    await pass_all(fleet)
    assert runs.started == [("c1", T0 + 300)]
    stored = await stores[0].get("c1")
    assert stored is not None and stored.next_run_at is None


async def test_a_revoked_creator_disables_the_schedule(stores: list[CronStore]) -> None:
    runs, clock = Runs(), Clock(T0 + 300)

    async def revoked(schedule: Schedule) -> Schedule:
        raise AuthenticationError("API key revoked")

    await stores[0].create(every_five_minutes())
    fleet = [CronScheduler(store, runs.fire, authorize=revoked, clock=clock) for store in stores]
    await pass_all(fleet)
    assert runs.started == []
    stored = await stores[0].get("c1")
    assert stored is not None and not stored.enabled and stored.last_error is not None
    assert stored.last_error["code"] == "key_revoked"
    clock.now = T0 + 3600
    assert await pass_all(fleet) == 0


async def test_a_refused_run_is_recorded_and_the_schedule_goes_on(stores: list[CronStore]) -> None:
    clock = Clock(T0 + 300)
    refused = True

    async def fire(schedule: Schedule, tick_at: float) -> str:
        if refused:
            raise QueueFullError("the run queue is full", retry_after=1.0)
        return "run_ok"

    await stores[0].create(every_five_minutes())
    fleet = [CronScheduler(store, fire, clock=clock) for store in stores]
    await pass_all(fleet)
    stored = await stores[0].get("c1")
    assert stored is not None and stored.enabled and stored.last_error is not None
    assert stored.last_run_id is None and stored.next_run_at == T0 + 600
    refused, clock.now = False, T0 + 600
    await pass_all(fleet)
    stored = await stores[0].get("c1")
    assert stored is not None and stored.last_run_id == "run_ok" and stored.last_error is None


async def test_time_zones_follow_wall_clock_time() -> None:
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer
    winter = datetime(2026, 1, 10, 0, 0, tzinfo=UTC).timestamp()
    summer = datetime(2026, 7, 10, 0, 0, tzinfo=UTC).timestamp()
    assert datetime.fromtimestamp(next_tick("0 9 * * *", "Europe/Paris", winter) or 0, UTC).hour == 8
    assert datetime.fromtimestamp(next_tick("0 9 * * *", "Europe/Paris", summer) or 0, UTC).hour == 7
