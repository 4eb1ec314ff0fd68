"""Session fixtures: one ``SessionManager`` per backend, the Redis one on the tests' real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.backends import STATE_BACKENDS, backend_settings, build_store
from tests.helpers import ManualClock

from agent_runtime.sessions import MemorySessionStore, SessionManager
from agent_runtime.sessions.base import SessionStore
from agent_runtime.settings import RedisSettings

BACKENDS = STATE_BACKENDS

FAST_REDIS = RedisSettings(connect_timeout=0.5, socket_timeout=0.5, pool_timeout=1.0, max_connections=16)


def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> SessionStore:
    """A session store of ``backend`` built by the registry (stores of one test share the database)."""
    settings = backend_settings(backend, request, tmp_path, redis=FAST_REDIS)
    store: SessionStore = build_store("sessions", backend, request, tmp_path, settings=settings)
    return store


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_factory(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[], SessionStore]:
    """Builds stores of the current backend that share one underlying database/server."""
    shared = MemorySessionStore() if backend == "memory" else None

    def factory() -> SessionStore:
        return shared if shared is not None else make_store(backend, tmp_path, request)

    return factory


@pytest.fixture
async def make_manager(store_factory: Callable[[], SessionStore]) -> AsyncIterator[Callable[..., SessionManager]]:
    made: list[SessionManager] = []

    def factory(**kwargs: Any) -> SessionManager:
        manager = SessionManager(store_factory(), **kwargs)
        made.append(manager)
        return manager

    yield factory
    for manager in made:
        await manager.aclose()


@pytest.fixture
async def manager(make_manager: Callable[..., SessionManager]) -> SessionManager:
    return make_manager()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fast_redis_settings() -> RedisSettings:
    """Short client timeouts, so fault tests see errors quickly."""
    return FAST_REDIS
