"""Run registry fixtures: ``Settings`` of every state backend (real redis-server for Redis)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.settings import Settings

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
]


@pytest.fixture(params=BACKENDS)
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings whose ``state_backend`` is each backend in turn (run store, quota ledger, usage ledger)."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else "redis://127.0.0.1:1/0"
    return Settings(state_backend=request.param, data_dir=tmp_path, redis_url=redis_url)
