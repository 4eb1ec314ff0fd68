"""Accounting: what every finished attempt owes the quota ledger and the usage ledger, never lost.

A write is first an entry of the worker's durable journal (``AccountingJournal``), then applied to the
state backend by the ``AccountingOutbox`` and forgotten; a failed apply is retried with backoff and a
restarted worker replays its journal. Appliers are idempotent by ``(run_id, attempt, kind)``.
"""

from agent_runtime.accounting.entries import ENTRY_KINDS, EntryKind, JournalEntry, JournalFullError
from agent_runtime.accounting.journal import DEFAULT_MAX_ENTRIES, AccountingJournal
from agent_runtime.accounting.outbox import AccountingOutbox, Applier
from agent_runtime.accounting.quota import adjust_entry, quota_appliers, reservation_from, settle_entry
from agent_runtime.accounting.usage import usage_appliers, usage_entry, usage_records

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "ENTRY_KINDS",
    "AccountingJournal",
    "AccountingOutbox",
    "Applier",
    "EntryKind",
    "JournalEntry",
    "JournalFullError",
    "adjust_entry",
    "quota_appliers",
    "reservation_from",
    "settle_entry",
    "usage_appliers",
    "usage_entry",
    "usage_records",
]
