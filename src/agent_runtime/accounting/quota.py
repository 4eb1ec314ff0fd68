"""Quota settles and adjusts as journal entries, and the idempotent appliers that replay them."""

from __future__ import annotations

from typing import Any

from agent_runtime.accounting.entries import EntryKind, JournalEntry
from agent_runtime.accounting.outbox import Applier
from agent_runtime.limits.quota.base import Bucket, QuotaLedger, Reservation

__all__ = ["adjust_entry", "quota_appliers", "reservation_from", "settle_entry"]


def _reservation_payload(reservation: Reservation) -> dict[str, Any]:
    return {
        "id": reservation.reservation_id,
        "tokens": reservation.tokens,
        "usd_micros": reservation.usd_micros,
        "buckets": [[b.scope, b.key, b.kind, b.limit, b.window_end] for b in reservation.buckets],
    }


def reservation_from(payload: dict[str, Any]) -> Reservation:
    raw = payload["reservation"]
    buckets = tuple(Bucket(s, k, kind, int(limit), float(end)) for s, k, kind, limit, end in raw["buckets"])
    return Reservation(str(raw["id"]), buckets, int(raw["tokens"]), int(raw["usd_micros"]))


def _entry(run_id: str, attempt: int, kind: EntryKind, reservation: Reservation, **amounts: Any) -> JournalEntry:
    return JournalEntry(run_id, attempt, kind, {"reservation": _reservation_payload(reservation), **amounts})


def settle_entry(run_id: str, attempt: int, reservation: Reservation, *, tokens: int, cost_usd: float) -> JournalEntry:
    """Replace ``reservation`` by the attempt's real usage."""
    return _entry(run_id, attempt, "settle", reservation, tokens=tokens, cost_usd=cost_usd)


def adjust_entry(run_id: str, attempt: int, reservation: Reservation, *, tokens: int, usd_micros: int) -> JournalEntry:
    """Correct a reaper's charge for the attempt by the signed difference to its real usage."""
    return _entry(run_id, attempt, "adjust", reservation, tokens=tokens, usd_micros=usd_micros)


def quota_appliers(ledger: QuotaLedger) -> dict[EntryKind, Applier]:
    """``settle`` and ``adjust`` appliers on ``ledger``, each idempotent by the entry's ``op_id``."""

    async def settle(entry: JournalEntry) -> None:
        p = entry.payload
        await ledger.settle(
            reservation_from(p), tokens=int(p["tokens"]), cost_usd=float(p["cost_usd"]), op_id=entry.op_id
        )

    async def adjust(entry: JournalEntry) -> None:
        p = entry.payload
        await ledger.adjust(
            reservation_from(p), tokens=int(p["tokens"]), usd_micros=int(p["usd_micros"]), op_id=entry.op_id
        )

    return {"settle": settle, "adjust": adjust}
