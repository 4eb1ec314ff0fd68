"""The queue worker inside one runtime (memory backend, memory bus, offline model): take-over of a run
whose lease expired (``run.recovered``, metrics), ``max_attempts``, a lease lost to another worker, a
cancel seen at the lease renewal, and tenants served in turn."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.event_bus import Event
from agent_runtime.runs import Run
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal
from tests.helpers import until

pytestmark = pytest.mark.timeout(60)


def principal(tenant: str) -> Principal:
    return Principal(tenant=tenant, user="ana", scopes=frozenset({"agents:run:*"}))


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(
        state_backend="memory",
        data_dir=tmp_path,
        offline_token_latency_ms=30,
        runs={"max_concurrent_runs": 1, "lease_s": 0.6, "heartbeat_s": 0.1, "scan_s": 0.05, "max_attempts": 3},
    )
    rt = await Runtime.create(settings)
    await rt.start_dispatcher()
    yield rt
    await rt.aclose()


async def events(runtime: Runtime) -> list[Event]:
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    await runtime.event_bus.subscribe("test", collect, pattern="run.*")
    return seen


def orphan(run_id: str, *, attempts: int) -> Run:
    """A run left running by a worker that died: its lease ended a second ago."""
    return Run(
        run_id=run_id,
        tenant="acme",
        user="ana",
        template="writer",
        input="a haiku",
        status="running",
        background=True,
        attempts=attempts,
        worker="gone:1",
        started_at=time.time() - 5,
        lease_until=time.time() - 1,
        principal=principal("acme"),
    )


async def record(runtime: Runtime, run_id: str) -> Run:
    assert runtime.run_records is not None
    run = await runtime.run_records.get(run_id)
    assert run is not None
    return run


async def test_a_run_whose_lease_expired_is_taken_over_and_finished(runtime: Runtime) -> None:
    seen = await events(runtime)
    assert runtime.run_records is not None and runtime.dispatcher is not None
    await runtime.run_records.create(orphan("run_orphan", attempts=1))
    done = await runtime.dispatcher.wait("run_orphan", "acme", timeout_s=20)
    assert done.status == "success" and done.output, done
    assert done.attempts == 2 and done.recoveries == 1 and done.lease_until is None
    assert done.worker == runtime.dispatcher.worker.worker  # type: ignore[union-attr]
    await runtime.flush_events(5)
    await until(lambda: "run.completed" in [e.type for e in seen])
    recovered = [e for e in seen if e.type == "run.recovered"]
    assert len(recovered) == 1 and recovered[0].run_id == "run_orphan" and recovered[0].payload["attempt"] == 2
    assert runtime.metrics.run_recoveries._value.get() == 1


async def test_a_run_past_max_attempts_ends_error(runtime: Runtime) -> None:
    seen = await events(runtime)
    assert runtime.run_records is not None and runtime.dispatcher is not None
    await runtime.run_records.create(orphan("run_tired", attempts=3))
    done = await runtime.dispatcher.wait("run_tired", "acme", timeout_s=20)
    assert done.status == "error" and done.error is not None and done.error["code"] == "max_attempts"
    assert done.attempts == 3 and done.output is None
    await runtime.flush_events(5)
    await until(lambda: any(e.type == "run.failed" and e.run_id == "run_tired" for e in seen))


async def test_a_lost_lease_stops_the_run_here_without_overwriting_it(runtime: Runtime) -> None:
    assert runtime.run_records is not None and runtime.dispatcher is not None and runtime.dispatcher.worker
    worker = runtime.dispatcher.worker
    run = await runtime.dispatcher.submit(
        AgentContext(input="a long poem about rain", template="writer", principal=principal("acme"))
    )
    await until(lambda: worker.running == 1)
    far = time.time() + 3600
    stolen = await runtime.run_records.transition(
        run.run_id, ("running",), match={"worker": worker.worker}, worker="thief:2", lease_until=far
    )
    assert stolen is not None
    await until(lambda: worker.running == 0)  # stopped at its next renewal
    kept = await record(runtime, run.run_id)
    assert kept.status == "running" and kept.worker == "thief:2" and kept.lease_until == far


async def test_a_cancel_flagged_by_another_process_stops_the_run(runtime: Runtime) -> None:
    assert runtime.run_records is not None and runtime.dispatcher is not None and runtime.dispatcher.worker
    worker = runtime.dispatcher.worker
    run = await runtime.dispatcher.submit(
        AgentContext(input="a long poem about rain", template="writer", principal=principal("acme"))
    )
    await until(lambda: worker.running == 1)
    await runtime.run_records.transition(run.run_id, ("running",), cancel_requested=True)  # as another worker's API
    done = await runtime.dispatcher.wait(run.run_id, "acme", timeout_s=20)
    assert done.status == "cancelled" and done.error is not None and done.error["code"] == "cancelled"


async def test_a_tenants_burst_does_not_starve_another(runtime: Runtime) -> None:
    dispatcher = runtime.dispatcher
    assert dispatcher is not None and dispatcher.worker is not None
    burst = [
        await dispatcher.submit(AgentContext(input="hi", template="writer", principal=principal("a"))) for _ in range(4)
    ]
    late = await dispatcher.submit(AgentContext(input="hi", template="writer", principal=principal("b")))
    ends = [await dispatcher.wait(r.run_id, r.tenant, timeout_s=30) for r in [*burst, late]]
    assert all(r.status == "success" for r in ends)
    order = [r.run_id for r in sorted(ends, key=lambda r: r.started_at or 0.0)]
    assert order.index(late.run_id) <= 1  # b's run started right after the run a had in progress
    rendered = runtime.metrics.render()[0].decode()
    assert 'agent_runtime_queued_runs_ended_total{status="success"} 5.0' in rendered
    assert "agent_runtime_run_queue_wait_seconds_count 5.0" in rendered
    assert "agent_runtime_run_queue_depth" in rendered
