"""The Agent Protocol servers of ``tests/agent_protocol/core`` (memory, SQLite, Redis), reused as they are."""

from tests.agent_protocol.core.conftest import ap, ap_memory, ap_redis, ap_sqlite

__all__ = ["ap", "ap_memory", "ap_redis", "ap_sqlite"]
