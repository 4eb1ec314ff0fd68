"""Run registry contract on every backend: batched registration (short runs cost no write), heartbeats,
claims stamped with the reaper's charge, and a finish that says whether a reaper claimed the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from agent_runtime.errors import BackendError
from agent_runtime.limits.quota.base import Quota, QuotaLimits, Reservation, buckets_for
from agent_runtime.orchestration.runs import RunReaper, RunRecord, RunStore, RunTracker, build_run_store
from agent_runtime.orchestration.runs.base import reservation_dict
from agent_runtime.orchestration.runs.sqlite import SQLiteRunStore
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext


@pytest.fixture
async def store(backend_settings: Settings) -> AsyncIterator[RunStore]:
    run_store = build_run_store(backend_settings)
    yield run_store
    await run_store.aclose()


def record(key: str, heartbeat_at: float, *, reserved: bool = False) -> RunRecord:
    reservation = None
    if reserved:
        buckets = tuple(buckets_for([Quota("{acme}:key:k1", QuotaLimits(daily_tokens=1000))], time.time()))
        reservation = reservation_dict(Reservation(key, buckets, 300, 4_000))
    run_id = key.split(":")[0]
    return RunRecord(
        key=key,
        run_id=run_id,
        template="writer",
        started_at=heartbeat_at,
        heartbeat_at=heartbeat_at,
        reservation=reservation,
    )


async def wait_for(store: RunStore, key: str) -> RunRecord:
    for _ in range(200):
        found = await store.get(key)
        if found is not None:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"{key} never registered")


async def test_a_run_shorter_than_the_flush_interval_is_never_written(store: RunStore) -> None:
    tracker = RunTracker(store, heartbeat_s=0.2, abandon_after_s=1.0, flush_s=0.05)
    context = AgentContext(input="x", template="writer")
    key = await tracker.started(context)
    if not store.in_process:  # an in-process store is written at once: it costs nothing
        assert await store.get(key) is None
    await tracker.finished(key, context)
    await asyncio.sleep(0.15)  # a few flush intervals
    assert await store.get(key) is None and tracker.inflight == 0
    await tracker.aclose()


async def test_a_longer_run_is_registered_then_dropped_at_its_end(store: RunStore) -> None:
    tracker = RunTracker(store, heartbeat_s=0.2, abandon_after_s=1.0, flush_s=0.05)
    contexts = [AgentContext(input="x", template="writer", session_id="s1") for _ in range(3)]
    keys = [await tracker.started(context) for context in contexts]
    for key, context in zip(keys, contexts, strict=True):
        live = await wait_for(store, key)  # written in one batch by the tracker's flush
        assert live.status == "running" and live.run_id == context.run_id and live.session_id == "s1"
        assert live.worker == tracker.worker
    for key, context in zip(keys, contexts, strict=True):
        await tracker.finished(key, context)
        assert await store.get(key) is None
        assert "runs.reaped_charge" not in context.state
    assert tracker.inflight == 0
    await tracker.aclose()


async def test_live_runs_keep_their_heartbeat_and_are_never_reaped(store: RunStore) -> None:
    tracker = RunTracker(store, heartbeat_s=0.05, abandon_after_s=0.3)
    reaper = RunReaper(store, abandon_after_s=0.3)
    context = AgentContext(input="x", template="writer")
    key = await tracker.started(context)
    await wait_for(store, key)
    for _ in range(8):
        await asyncio.sleep(0.1)
        assert await reaper.reap() == []
    await tracker.finished(key, context)
    assert await store.get(key) is None
    await tracker.aclose()


@pytest.mark.parametrize("charge", ["reserved", "release"])
async def test_a_claim_is_stamped_with_the_charge_and_finish_reports_it(store: RunStore, charge: str) -> None:
    now = time.time()
    await store.start_many([record("run_a:1", now - 100, reserved=True), record("run_b:1", now)])
    claimed = await store.claim_stale(now - 10, now, charge=charge)  # type: ignore[arg-type]
    assert [(r.key, r.status, r.charge) for r in claimed] == [("run_a:1", "abandoned", charge)]
    assert await store.claim_stale(now - 10, now) == []  # exactly once
    expected = (300, 4_000) if charge == "reserved" else (0, 0)
    assert claimed[0].reaper_charge() == expected

    reaped = await store.finish("run_a:1")  # the stalled worker ends it: it learns it was claimed
    assert reaped is not None and reaped.status == "abandoned" and reaped.charge == charge
    assert reaped.reaper_charge() == expected
    assert await store.finish("run_b:1") is None  # dropped while running: nobody claimed it
    assert await store.get("run_b:1") is None
    assert await store.finish("run_c:1") is None  # never registered
    assert (await store.get("run_a:1")).status == "abandoned"  # type: ignore[union-attr]


async def test_runs_ending_together_are_dropped_in_one_batch(store: RunStore) -> None:
    now = time.time()
    await store.start_many([record("run_a:1", now - 100), record("run_b:1", now), record("run_c:1", now)])
    [claimed] = await store.claim_stale(now - 10, now)
    found = await store.finish_many(["run_a:1", "run_b:1", "run_c:1", "run_d:1"])
    assert list(found) == ["run_a:1"] and found["run_a:1"].run_id == claimed.run_id
    assert await store.get("run_b:1") is None and await store.get("run_c:1") is None

    # a key used again (a redelivered trigger's run) after its first attempt was reaped: the new attempt
    # runs and ends normally, in a batch with a really reaped one; only that one is reported
    await store.start_many([record("run_a:1", now), record("run_e:1", now - 100)])
    await store.claim_stale(now - 10, now)
    found = await store.finish_many(["run_a:1", "run_e:1"])
    assert list(found) == ["run_e:1"]

    tracker = RunTracker(store, heartbeat_s=0.2, abandon_after_s=1.0, flush_s=0.05)
    contexts = [AgentContext(input="x", template="writer") for _ in range(20)]
    keys = [await tracker.started(context) for context in contexts]
    for key in keys:
        await wait_for(store, key)
    await asyncio.gather(*(tracker.finished(k, c) for k, c in zip(keys, contexts, strict=True)))
    assert [await store.get(key) for key in keys] == [None] * 20 and tracker.inflight == 0
    await tracker.aclose()


class AnsweredLateStore(SQLiteRunStore):
    """A real SQLite registry whose first batch of starts is applied but answered with an error (a
    timeout after the write landed)."""

    failed = False

    async def start_many(self, records: Sequence[RunRecord]) -> None:
        await super().start_many(records)
        if not self.failed:
            self.failed = True
            raise BackendError("timed out waiting for the answer")


async def test_a_start_that_failed_after_it_was_applied_is_still_dropped(tmp_path: Path) -> None:
    store = AnsweredLateStore(tmp_path / "runs.sqlite3")
    tracker = RunTracker(store, heartbeat_s=0.2, abandon_after_s=1.0, flush_s=0.05)
    context = AgentContext(input="x", template="writer")
    key = await tracker.started(context)
    await wait_for(store, key)  # written, though the tracker was told it failed
    await asyncio.sleep(0.01)
    await tracker.finished(key, context)  # ends before the retry: it must not be left for a reaper
    assert await store.get(key) is None and tracker.inflight == 0
    await tracker.aclose()
    await store.aclose()


async def test_the_reaper_leaves_a_queued_runs_attempt_to_be_resumed(store: RunStore) -> None:
    """A queued run's attempt is resumed by the worker that takes its lease over: the reaper releases
    its reservation instead of charging it, and reports no failure."""
    from agent_runtime.limits.quota.memory import MemoryQuotaLedger
    from agent_runtime.orchestration.recovery import DURABLE_KEY

    ledger = MemoryQuotaLedger()
    quota = Quota("{acme}:key:k1", QuotaLimits(daily_tokens=1000))
    reported: list[str] = []
    tracker = RunTracker(store, heartbeat_s=0.05, abandon_after_s=0.3, flush_s=0.01)
    for run_id, durable in (("run_q", True), ("run_fg", False)):
        context = AgentContext(input="x", template="writer", run_id=run_id, metadata={DURABLE_KEY: durable})
        context.state["cost.reservation"] = await ledger.reserve(run_id, [quota], tokens=300, cost_usd=0, ttl_s=60)
        key = await tracker.started(context)
        assert (await wait_for(store, key)).metadata == ({"resumable": True} if durable else {})
    await tracker.aclose()  # the worker dies: no more heartbeats
    reaper = RunReaper(store, abandon_after_s=0.3, ledger=ledger, on_abandoned=lambda r, e: reported.append(r.run_id))
    deadline = time.monotonic() + 10
    claimed: list[RunRecord] = []
    while len(claimed) < 2 and time.monotonic() < deadline:
        claimed += await reaper.reap()
        await asyncio.sleep(0.05)
    assert sorted(r.run_id for r in claimed) == ["run_fg", "run_q"]
    assert reported == ["run_fg"]  # only the foreground attempt is reported abandoned
    (status,) = await ledger.status([quota])
    assert status.spent == 300 and status.reserved == 0  # run_fg charged its bound, run_q's released
