"""The one list of state backends every contract suite runs on, and how a test gets a store of each.

Stores are built through the runtime's registry (``agent_runtime.backends.build``) from a URL, as
the runtime builds them: ``memory://``, a SQLite file under the test's ``tmp_path``, the tests'
redis-server (flushed per test), the test session's PostgreSQL database (emptied per test).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_runtime.backends import build
from agent_runtime.settings import Settings

__all__ = ["STATE_BACKENDS", "backend_settings", "backend_url", "build_store"]

STATE_BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
]
SHARED_BACKENDS = STATE_BACKENDS[1:]
"""Backends that several stores (workers) share through the engine."""


def backend_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path, name: str = "state") -> str:
    """The state URL of ``backend`` for this test (the same on every call within the test)."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / name}.sqlite3"
    if backend == "redis":
        return str(request.getfixturevalue("redis_url"))
    if backend == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    raise ValueError(f"unknown test backend {backend!r}")


def backend_settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with every family on ``backend`` (``data_dir`` in the test's ``tmp_path``)."""
    return Settings(state_url=backend_url(backend, request, tmp_path), data_dir=tmp_path, **overrides)


def build_store(
    family: str,
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    *,
    settings: Settings | None = None,
    **options: Any,
) -> Any:
    """A ``family`` store on ``backend``, built by the registry."""
    return build(family, settings or backend_settings(backend, request, tmp_path), **options)
