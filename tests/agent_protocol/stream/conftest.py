"""The Agent Protocol servers of ``tests/agent_protocol/core`` (memory, SQLite, Redis) reused as they are,
and a slow one (tokens 50 ms apart) for streams to leave, rejoin and cancel part way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent_runtime.settings import RunSettings, Settings
from tests.agent_protocol.core.conftest import APServer, _serve, ap, ap_memory, ap_redis, ap_sqlite

__all__ = ["ap", "ap_memory", "ap_redis", "ap_sqlite", "ap_streaming"]

HASTY = """
templates:
  - name: hasty
    description: Gives up before a long answer is over.
    timeout_s: 0.5
    max_retries: 0
"""


@pytest.fixture(scope="session")
def ap_streaming(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APServer]:
    """SQLite, 50 ms per token, 30 events kept per run; ``hasty`` times out before a long answer ends."""
    data = tmp_path_factory.mktemp("ap-stream")
    (data / "templates").mkdir()
    (data / "templates" / "hasty.yaml").write_text(HASTY, encoding="utf-8")
    settings = Settings(
        state_backend="sqlite",
        offline_token_latency_ms=50,
        data_dir=data,
        runs=RunSettings(max_events_per_run=30),
    )
    server = _serve(settings, "sqlite")
    yield server
    server.live.stop()
