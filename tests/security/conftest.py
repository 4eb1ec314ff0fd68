"""Key store fixtures: one parametrized fixture over every backend (memory, SQLite, real Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.security.base import KeyStore
from agent_runtime.security.memory import MemoryKeyStore
from agent_runtime.security.redis import RedisKeyStore
from agent_runtime.security.sqlite import SQLiteKeyStore

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
]


@pytest.fixture(params=BACKENDS)
async def keystore(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    store: KeyStore
    if request.param == "memory":
        store = MemoryKeyStore()
    elif request.param == "sqlite":
        store = SQLiteKeyStore(tmp_path / "keys.sqlite3")
    else:
        store = RedisKeyStore(request.getfixturevalue("redis_url"))
    yield store
    await store.aclose()
