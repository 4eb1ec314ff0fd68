"""Three whole runtimes (as three worker processes would build them) on one SQLite file, one Redis or one
PostgreSQL database: each tick of a schedule starts exactly one background run, which one of them
executes as the schedule's creator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.crons import CronSpec
from agent_runtime.runs import RunFilter
from agent_runtime.runtime import Runtime
from agent_runtime.security.record import KeyChanges
from tests.backends import SHARED_BACKENDS, backend_settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=SHARED_BACKENDS)
async def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Runtime]]:
    settings = backend_settings(request.param, request, tmp_path, crons={"poll_s": 3600})
    runtimes = [await Runtime.create(settings) for _ in range(3)]
    for runtime in runtimes:
        await runtime.start_dispatcher()
    yield runtimes
    for runtime in runtimes:
        await runtime.aclose()


async def test_each_tick_starts_one_run_across_three_runtimes(fleet: list[Runtime]) -> None:
    first = fleet[0]
    assert first.crons is not None
    plaintext, _ = await first.keys.create_key("acme", "ann", ["agents:run:*", "sessions"])
    principal = await first.keys.authenticate(plaintext)
    spec = CronSpec(template="writer", input="the daily note", schedule="*/5 * * * *", session_id="ses_daily")
    cron = await first.crons.create(principal, spec)
    assert cron.next_run_at is not None
    clock = Clock()
    for runtime in fleet:
        assert runtime.cron_scheduler is not None
        runtime.cron_scheduler.clock = clock
    started: list[str] = []
    for tick in (cron.next_run_at, cron.next_run_at + 300):
        clock.now = tick + 1.0
        passes = await asyncio.gather(*(r.cron_scheduler.run_due() for r in fleet if r.cron_scheduler is not None))
        won = [t for ticks in passes for t in ticks]
        assert [t.tick_at for t in won] == [tick] and won[0].run_id is not None
        started.append(won[0].run_id)
        assert fleet[0].dispatcher is not None
        run = await fleet[0].dispatcher.wait(won[0].run_id, "acme", timeout_s=60)
        assert run.status == "success" and run.user == "ann" and run.session_id == "ses_daily", run.error
    assert fleet[2].run_records is not None
    runs = await fleet[2].run_records.find(RunFilter(tenant="acme"))
    assert sorted(r.run_id for r in runs if r.metadata.get("source") == "cron") == sorted(started)
    session = await fleet[1].sessions.get_session("ses_daily", tenant="acme", user_id="ann")
    assert session.message_count == 4  # two turns, each once


async def test_a_tick_runs_with_the_creators_key_as_it_is_now(fleet: list[Runtime]) -> None:
    """Scopes taken from the key after the schedule was made apply to its next run (refused: no scope)."""
    first = fleet[0]
    assert first.crons is not None and first.cron_scheduler is not None and first.dispatcher is not None
    plaintext, record = await first.keys.create_key("acme", "bea", ["agents:run:*"])
    cron = await first.crons.create(
        await first.keys.authenticate(plaintext), CronSpec(template="writer", input="hi", schedule="*/5 * * * *")
    )
    await first.keys.update_key(record.key_id, KeyChanges(scopes=["agents:run:analyst"]))
    assert cron.next_run_at is not None
    due = cron.next_run_at + 1.0
    first.cron_scheduler.clock = lambda: due
    (tick,) = await first.cron_scheduler.run_due()
    assert tick.run_id is not None
    run = await first.dispatcher.wait(tick.run_id, "acme", timeout_s=60)
    assert run.status == "error" and run.error is not None and run.error["code"] == "permission_denied"
    assert run.principal is not None and run.principal.scopes == frozenset({"agents:run:analyst"})
