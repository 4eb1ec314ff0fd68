"""Key store fixtures: one parametrized fixture over every backend, built by the registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.security.base import KeyStore
from tests.backends import STATE_BACKENDS, build_store


@pytest.fixture(params=STATE_BACKENDS)
async def keystore(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    store: KeyStore = build_store("keys", request.param, request, tmp_path)
    yield store
    await store.aclose()
