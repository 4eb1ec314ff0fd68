"""The dispatcher inside one runtime (memory backend, memory bus): the bus events of a background run's
life, the principal it runs as, a full queue refused with 503 + Retry-After, foreground runs recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.errors import AuthenticationError, InputTooLargeError, ValidationError
from agent_runtime.event_bus import Event
from agent_runtime.runs import QueueFullError, RunRecorder
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal
from tests.helpers import until

ACME = Principal(tenant="acme", user="ana", scopes=frozenset({"agents:run:*"}))


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(
        state_backend="memory",
        data_dir=tmp_path,
        offline_token_latency_ms=20,
        runs={"max_concurrent_runs": 1, "max_queued_runs": 2},
    )
    rt = await Runtime.create(settings)
    await rt.start_dispatcher()
    yield rt
    await rt.aclose()


async def _events(runtime: Runtime) -> list[Event]:
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    await runtime.event_bus.subscribe("test", collect, pattern="run.*")
    return seen


def ctx(text: str = "a poem about rain", principal: Principal | None = ACME) -> AgentContext:
    return AgentContext(input=text, template="writer", principal=principal)


async def test_bus_sees_queued_started_completed_and_cancelled(runtime: Runtime) -> None:
    seen = await _events(runtime)
    dispatcher = runtime.dispatcher
    assert dispatcher is not None
    first = await dispatcher.submit(ctx())
    second = await dispatcher.submit(ctx())
    assert (await dispatcher.cancel(second.run_id, "acme")).status == "cancelled"
    done = await dispatcher.wait(first.run_id, "acme", timeout_s=30)
    assert done.status == "success" and done.user == "ana"
    await runtime.flush_events(5)

    def of(run_id: str) -> list[str]:
        return [e.type for e in seen if e.run_id == run_id]

    await until(lambda: "run.completed" in of(first.run_id) and "run.cancelled" in of(second.run_id))
    assert of(first.run_id) == ["run.queued", "run.started", "run.completed"]
    assert of(second.run_id) == ["run.queued", "run.cancelled"]
    assert all(e.tenant == "acme" for e in seen)


async def test_a_full_queue_is_refused_with_retry_after(runtime: Runtime) -> None:
    dispatcher = runtime.dispatcher
    assert dispatcher is not None
    running = await dispatcher.submit(ctx())
    await until(lambda: dispatcher.worker is not None and dispatcher.worker.running == 1)  # the worker took it
    await dispatcher.submit(ctx())
    await dispatcher.submit(ctx())
    with pytest.raises(QueueFullError) as refused:
        await dispatcher.submit(ctx())
    assert refused.value.status_code == 503 and refused.value.retry_after == 1.0
    assert (await dispatcher.wait(running.run_id, "acme", timeout_s=30)).status == "success"


async def test_a_background_run_goes_through_the_onion_as_its_principal(runtime: Runtime) -> None:
    dispatcher = runtime.dispatcher
    assert dispatcher is not None
    anonymous = await dispatcher.submit(ctx(principal=None))  # the auth middleware refuses it at start
    ended = await dispatcher.wait(anonymous.run_id, "default", timeout_s=30)
    assert ended.status == "error" and ended.error is not None
    assert ended.error["code"] == AuthenticationError.code


async def test_foreground_runs_are_recorded(runtime: Runtime) -> None:
    result = await runtime.executor.execute_with_retry(ctx("hello"))
    recorder = next(o for o in runtime.executor.observers.observers if isinstance(o, RunRecorder))
    await recorder.flush()
    assert runtime.run_records is not None
    run = await runtime.run_records.get(result.run_id, tenant="acme")
    assert run is not None and run.status == "success" and not run.background
    assert run.output == result.output and run.attempts == 1 and run.usage == result.usage.model_dump()


@pytest.mark.parametrize(
    ("text", "error"), [("", ValidationError), ("a\udb38b", ValidationError), ("x" * 40_000, InputTooLargeError)]
)
async def test_bad_input_is_refused_at_submission(runtime: Runtime, text: str, error: type[Exception]) -> None:
    assert runtime.dispatcher is not None
    with pytest.raises(error):
        await runtime.dispatcher.submit(ctx(text))
    assert runtime.run_records is not None and await runtime.run_records.pending() == []
