"""Accounting: what every finished attempt owes the quota ledger and the usage ledger, never lost.

A write is first an entry of the worker's durable journal (``AccountingJournal``), then applied to the
state backend by the ``AccountingOutbox`` and forgotten; a failed apply is retried with backoff and a
restarted worker replays its journal. Appliers are idempotent by ``(run_id, attempt, kind)``.

Modules: ``attempts`` (what an ending attempt is charged, the ``context.state`` keys), ``entries``
(typed journal entries), ``journal`` (the SQLite table), ``outbox`` (apply, retry, replay), ``quota``
and ``usage`` (entries and appliers for the quota ledger and the usage ledger). Estimating a run's
bound is ``orchestration.middleware.cost.upper_bound_estimate``; reserving and settling happen in
``CostTrackingMiddleware``, which hands its settles to the outbox.
"""

from agent_runtime.accounting.attempts import (
    REAPED_CHARGE_KEY,
    REGISTRY_FINISH_KEY,
    RESERVATION_KEY,
    error_usage,
    failed_result,
    reaped_charge,
    result_tokens,
    run_shielded,
)
from agent_runtime.accounting.entries import ENTRY_KINDS, EntryKind, JournalEntry, JournalFullError
from agent_runtime.accounting.journal import DEFAULT_MAX_ENTRIES, AccountingJournal
from agent_runtime.accounting.outbox import AccountingOutbox, Applier
from agent_runtime.accounting.quota import adjust_entry, quota_appliers, reservation_from, settle_entry
from agent_runtime.accounting.usage import usage_appliers, usage_entry, usage_records

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "ENTRY_KINDS",
    "REAPED_CHARGE_KEY",
    "REGISTRY_FINISH_KEY",
    "RESERVATION_KEY",
    "AccountingJournal",
    "AccountingOutbox",
    "Applier",
    "EntryKind",
    "JournalEntry",
    "JournalFullError",
    "adjust_entry",
    "error_usage",
    "failed_result",
    "quota_appliers",
    "reaped_charge",
    "reservation_from",
    "result_tokens",
    "run_shielded",
    "settle_entry",
    "usage_appliers",
    "usage_entry",
    "usage_records",
]
