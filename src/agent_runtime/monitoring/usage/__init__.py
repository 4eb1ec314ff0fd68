"""Usage ledger backends (memory, SQLite, Redis, PostgreSQL) behind one ABC, and the factory that picks one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_runtime.monitoring.usage.base import (
    GroupBy,
    Period,
    UsageQuery,
    UsageRecord,
    UsageRow,
    UsageStore,
    aggregate,
)
from agent_runtime.monitoring.usage.memory import MemoryUsageStore

if TYPE_CHECKING:
    from agent_runtime.settings import Settings

__all__ = [
    "GroupBy",
    "MemoryUsageStore",
    "Period",
    "UsageQuery",
    "UsageRecord",
    "UsageRow",
    "UsageStore",
    "aggregate",
    "build_usage_store",
]


def build_usage_store(settings: Settings) -> UsageStore:
    """The ledger on the usage backend of ``settings`` (see ``agent_runtime.backends``)."""
    from agent_runtime.backends import build

    store: UsageStore = build("usage", settings)
    return store
