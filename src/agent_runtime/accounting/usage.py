"""Usage-ledger records as journal entries, and the idempotent applier that writes them."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from agent_runtime.accounting.entries import EntryKind, JournalEntry
from agent_runtime.accounting.outbox import Applier
from agent_runtime.monitoring.usage import UsageRecord, UsageStore

__all__ = ["usage_appliers", "usage_entry", "usage_records"]


def usage_entry(run_id: str, attempt: int, records: list[UsageRecord]) -> JournalEntry:
    """The priced ledger rows of one attempt (one per model it used)."""
    rows = [asdict(r) | {"day": r.day.isoformat()} for r in records]
    return JournalEntry(run_id, attempt, "usage", {"records": rows})


def usage_records(entry: JournalEntry) -> list[UsageRecord]:
    rows: list[dict[str, Any]] = entry.payload["records"]
    return [UsageRecord(**(row | {"day": date.fromisoformat(row["day"])})) for row in rows]


def usage_appliers(store: UsageStore) -> dict[EntryKind, Applier]:
    """Writes an entry's rows, each once by ``<op_id>:<index>``, and waits until they are stored."""

    async def apply(entry: JournalEntry) -> None:
        for index, record in enumerate(usage_records(entry)):
            await store.add(record, op_id=f"{entry.op_id}:{index}")
        await store.flush()

    return {"usage": apply}
