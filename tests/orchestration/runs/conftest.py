"""Run registry fixtures: ``Settings`` of every state backend (real redis-server for Redis)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.settings import Settings
from tests.backends import STATE_BACKENDS
from tests.backends import backend_settings as settings_on


@pytest.fixture(params=STATE_BACKENDS)
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings with every family on each backend in turn (run store, quota ledger, usage ledger)."""
    return settings_on(request.param, request, tmp_path)
