"""The Agent Protocol servers of ``tests/agent_protocol/core``, reused as they are."""

from __future__ import annotations

from tests.agent_protocol.core.conftest import ap_memory, ap_redis, ap_sqlite

__all__ = ["ap_memory", "ap_redis", "ap_sqlite"]
