"""Accounting journal and outbox on a real SQLite file: durable, bounded, retried, replayed, applied once."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.accounting import AccountingJournal, AccountingOutbox, JournalEntry, JournalFullError
from agent_runtime.errors import BackendError, ValidationError
from agent_runtime.limits.quota.base import Quota, QuotaLimits
from agent_runtime.limits.quota.sqlite import SQLiteQuotaLedger

TOKENS = Quota("{acme}:key:k1", QuotaLimits(daily_tokens=10_000))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def entry(run: str, tokens: int = 10, kind: str = "settle") -> JournalEntry:
    return JournalEntry(run, 1, kind, {"tokens": tokens})  # type: ignore[arg-type]


def test_an_appended_entry_survives_reopening(tmp_path: Path) -> None:
    journal = AccountingJournal(tmp_path / "journal.sqlite3")
    assert journal.append(entry("r1", 42))
    assert not journal.append(entry("r1", 99))  # same (run, attempt, kind): held once, first payload kept
    journal.close()  # the connection goes away as with a killed process: the row is committed
    again = AccountingJournal(tmp_path / "journal.sqlite3")
    assert [(e.op_id, e.payload, tries) for e, tries in again.due(everything=True)] == [
        ("r1:1:settle", {"tokens": 42}, 0)
    ]
    again.close()


async def test_a_full_journal_refuses_new_runs_with_503_but_keeps_what_finished_runs_owe(tmp_path: Path) -> None:
    journal = AccountingJournal(tmp_path / "j.sqlite3", max_entries=2)
    outbox = AccountingOutbox(journal, {})
    journal.append(entry("r1"))
    outbox.check_capacity()
    journal.append(entry("r2"))
    with pytest.raises(JournalFullError) as info:
        outbox.check_capacity()
    assert info.value.status_code == 503 and info.value.code == "accounting_journal_full"
    assert journal.append(entry("r3")) and journal.size() == 3  # an admitted run's settle is never dropped
    journal.done(entry("r1"))
    journal.done(entry("r2"))
    outbox.check_capacity()
    journal.close()


def test_malformed_entries_are_refused() -> None:
    with pytest.raises(ValidationError):
        JournalEntry("", 1, "settle")
    with pytest.raises(ValidationError):
        JournalEntry("r", 1, "bogus")  # type: ignore[arg-type]


def test_deferred_entries_wait_for_their_backoff(tmp_path: Path) -> None:
    clock = Clock()
    journal = AccountingJournal(tmp_path / "j.sqlite3", clock=clock)
    journal.append(entry("r1"))
    journal.defer(entry("r1"), 5.0)
    assert journal.due() == [] and journal.next_due_in() == 5.0
    clock.now += 5.0
    assert [(e.run_id, tries) for e, tries in journal.due()] == [("r1", 1)]
    journal.close()


async def test_a_failed_apply_stays_and_is_retried_with_backoff_until_the_backend_is_back(tmp_path: Path) -> None:
    clock = Clock()
    journal = AccountingJournal(tmp_path / "j.sqlite3", clock=clock)
    applied: list[str] = []
    backend_up = False

    async def apply(e: JournalEntry) -> None:
        if not backend_up:
            raise BackendError("down")
        applied.append(e.op_id)

    outbox = AccountingOutbox(journal, {"settle": apply}, backoff_s=1.0, max_backoff_s=4.0)
    assert not await outbox.submit(entry("r1"))
    assert journal.size() == 1 and journal.next_due_in() == 1.0
    clock.now += 1.0
    assert await outbox.drain() == 0  # still down: the second failure doubles the delay
    assert journal.next_due_in() == 2.0
    backend_up = True
    assert await outbox.drain() == 0  # not due yet
    clock.now += 2.0
    assert await outbox.drain() == 1
    assert applied == ["r1:1:settle"] and journal.size() == 0
    journal.close()


async def test_a_restarted_worker_replays_its_journal_once_into_the_quota_ledger(tmp_path: Path) -> None:
    """Crash between apply and mark: the entry is applied again on replay, and counts once."""
    ledger = SQLiteQuotaLedger(tmp_path / "quota.sqlite3")
    res = await ledger.reserve("r1:1", [TOKENS], tokens=500, cost_usd=0.0, ttl_s=600)

    async def settle(e: JournalEntry) -> None:
        await ledger.settle(res, tokens=int(e.payload["tokens"]), cost_usd=0.0, op_id=e.op_id)

    journal = AccountingJournal(tmp_path / "j.sqlite3")
    journal.append(entry("r1", 120))
    await settle(entry("r1", 120))  # applied, then the worker died before marking it done
    journal.close()
    restarted = AccountingOutbox(AccountingJournal(tmp_path / "j.sqlite3"), {"settle": settle})
    assert await restarted.replay() == 1
    (status,) = await ledger.status([TOKENS])
    assert (status.spent, status.reserved) == (120, 0) and restarted.journal.size() == 0
    restarted.journal.close()
    await ledger.aclose()
