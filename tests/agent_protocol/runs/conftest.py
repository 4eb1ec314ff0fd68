"""The Agent Protocol servers of ``tests/agent_protocol/core`` (memory, SQLite, Redis), reused as they
are, and one slow server (its offline model takes seconds per answer) for cancels and busy threads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent_runtime.settings import Settings
from tests.agent_protocol.core.conftest import APServer, _serve, ap, ap_memory, ap_redis, ap_sqlite

__all__ = ["ap", "ap_memory", "ap_redis", "ap_slow", "ap_sqlite"]

HASTY = """
templates:
  - name: hasty
    description: Gives up before the slow model answers.
    timeout_s: 0.2
    max_retries: 0
"""


@pytest.fixture(scope="session")
def ap_slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APServer]:
    """SQLite, 300 ms per generated token: a run stays running long enough to be seen, cancelled or
    collided with; ``hasty`` times out before its first answer."""
    data = tmp_path_factory.mktemp("ap-slow")
    (data / "templates").mkdir()
    (data / "templates" / "hasty.yaml").write_text(HASTY, encoding="utf-8")
    server = _serve(Settings(state_backend="sqlite", offline_token_latency_ms=300, data_dir=data), "sqlite")
    yield server
    server.live.stop()
