"""Every store backend, built through ``build_store`` like the runtime does: memory, a SQLite file,
a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langgraph.store.base import BaseStore

from agent_runtime.settings import Settings
from agent_runtime.store import build_store

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
]


def backend_settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest, **kwargs: object) -> Settings:
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else "redis://127.0.0.1:1/0"
    return Settings(state_backend=backend, data_dir=tmp_path, redis_url=redis_url, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BaseStore]:
    store = await build_store(backend_settings(request.param, tmp_path, request))
    yield store
    await store.aclose()  # type: ignore[attr-defined]
