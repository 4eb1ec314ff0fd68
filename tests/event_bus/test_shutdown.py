"""Shutdown order: a run's last events (buffered by the observer when its caller returns) reach the bus
before the bus closes, whether the CLI, the HTTP server's lifespan or a library user closes the runtime."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from agent_runtime.event_bus import Event
from agent_runtime.runtime import Runtime
from agent_runtime.server.app import create_app
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal

ADA = Principal(tenant="acme", user="ada", scopes=frozenset({"admin"}))


async def test_aclose_right_after_a_run_publishes_its_last_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = await Runtime.create(Settings(state_backend="memory", data_dir=tmp_path))
    seen: list[str] = []

    async def handler(event: Event) -> None:
        seen.append(event.type)

    await runtime.event_bus.subscribe("audit", handler, pattern="run.*")
    await runtime.executor.execute_async(AgentContext(input="hi", template="writer", principal=ADA))
    with caplog.at_level(logging.WARNING, logger="agent_runtime.event_bus"):
        await runtime.aclose()  # no await in between: run.completed is still in the observer's buffer
    assert runtime.publisher.lost == 0 and runtime.publisher.published == 2
    assert len(seen) + runtime.event_bus.queued("audit") == 2  # handled, or waiting in the group's queue
    assert not [r for r in caplog.records if "lost" in r.getMessage()]


async def test_a_notification_after_close_is_counted_lost(tmp_path: Path) -> None:
    runtime = await Runtime.create(Settings(state_backend="memory", data_dir=tmp_path))
    await runtime.aclose()
    runtime.event_observer.session_event("session.expired", {"tenant": "acme", "session_id": "s"})
    assert runtime.publisher.lost == 1


@pytest.mark.redis
async def test_server_shutdown_publishes_the_last_runs_events(tmp_path: Path, redis_url: str) -> None:
    import redis

    settings = Settings(state_backend="memory", event_bus="redis", redis_url=redis_url, data_dir=tmp_path)
    app = create_app(settings=settings, drain_timeout_s=1)  # the app owns (and closes) its runtime
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        result = await runtime.executor.execute_async(AgentContext(input="hi", template="writer", principal=ADA))
    assert runtime.publisher.lost == 0
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        events = [json.loads(fields["e"]) for _, fields in client.xrange(runtime.event_bus.stream)]
    finally:
        client.close()
    assert sorted(e["type"] for e in events if e["run_id"] == result.run_id) == ["run.completed", "run.started"]
