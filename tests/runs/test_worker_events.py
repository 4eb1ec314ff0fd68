"""The queue worker streams each run into the run event log: every event in order, the last one
(``final`` / ``error``) after the outcome is recorded, then the log closed (a follower stops)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal
from tests.helpers import until

pytestmark = pytest.mark.timeout(60)

PRINCIPAL = Principal(tenant="acme", user="ana", scopes=frozenset({"agents:run:*"}))


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(state_backend="memory", data_dir=tmp_path, offline_token_latency_ms=20)
    rt = await Runtime.create(settings)
    await rt.start_dispatcher()
    yield rt
    await rt.aclose()


async def test_a_background_run_streams_into_its_log_until_it_ends(runtime: Runtime) -> None:
    assert runtime.dispatcher is not None and runtime.run_events is not None
    run = await runtime.dispatcher.submit(AgentContext(input="a haiku", template="writer", principal=PRINCIPAL))
    followed = [logged async for logged in runtime.run_events.read(run.run_id)]  # returns once closed
    types = [logged.event.type for logged in followed]
    assert types[-1] == "final" and types.count("final") == 1 and "token" in types, types
    final = followed[-1].event.data
    done = await runtime.dispatcher.get(run.run_id, "acme")
    assert done.status == "success" and final["output"] == done.output
    assert "salvaged_usage" not in final["metadata"]
    text = "".join(str(e.event.data.get("text", "")) for e in followed if e.event.type == "token")
    assert text == done.output
    ids = [logged.id for logged in followed]
    resumed = [logged.id async for logged in runtime.run_events.read(run.run_id, after=ids[1], follow=False)]
    assert resumed == ids[2:]


async def test_a_cancelled_run_ends_its_log_with_the_cancel(runtime: Runtime) -> None:
    assert runtime.dispatcher is not None and runtime.dispatcher.worker is not None and runtime.run_events
    run = await runtime.dispatcher.submit(
        AgentContext(input="a long poem about rain", template="writer", principal=PRINCIPAL)
    )
    worker = runtime.dispatcher.worker
    await until(lambda: worker.running == 1)
    cancelled = await runtime.dispatcher.cancel(run.run_id, "acme")
    assert cancelled.status == "cancelled"
    followed = [logged.event async for logged in runtime.run_events.read(run.run_id)]
    assert followed[-1].type == "error" and followed[-1].data["code"] == "cancelled"
