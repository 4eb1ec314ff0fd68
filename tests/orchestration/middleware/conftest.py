"""Fixtures for the middleware tests: a key service, and the limiters and ledgers of every backend
(the same fixtures as the limits tests, so a backend added there is tested here too)."""

from __future__ import annotations

import pytest

from agent_runtime.security.keys import KeyService
from agent_runtime.security.memory import MemoryKeyStore
from tests.limits.conftest import ledger, limiter

__all__ = ["keys", "ledger", "limiter"]


@pytest.fixture
def keys() -> KeyService:
    return KeyService(MemoryKeyStore())
