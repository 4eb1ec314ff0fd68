"""Quota ledger: reserve a run's upper bound before it starts, settle to its real usage after.

Each quota is a set of *buckets*: the tokens of one scope for one UTC day, the spend (integer
micro-dollars, so sums are exact) of one scope for one UTC month. ``reserve`` admits a run only if,
in every bucket, ``spent + reserved + upper_bound <= limit``, and records the reservation in all of
them at once. ``settle`` removes the reservation and adds the real usage. Concurrent runs therefore
never push settled spend past a quota (as long as real usage stays within the reserved bound).
A reservation whose process died expires after its TTL and stops counting.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from agent_runtime.errors import QuotaExceededError, ValidationError

__all__ = [
    "Bucket",
    "BucketStatus",
    "Quota",
    "QuotaLedger",
    "QuotaLimits",
    "Reservation",
    "usd_to_micros",
    "window_end",
]

Kind = Literal["daily_tokens", "monthly_usd"]
RETRY_WHEN_INFLIGHT_S = 1.0
"""Retry-after when only in-flight reservations block a run: they settle or expire soon."""


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    daily_tokens: int | None = None
    monthly_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Quota:
    """The limits of one scope (e.g. ``{acme}:key:<id>`` or ``{acme}:tenant``).

    Put a ``{hash tag}`` (the tenant) in scopes reserved together, for Redis Cluster.
    """

    scope: str
    limits: QuotaLimits


@dataclass(frozen=True, slots=True)
class Bucket:
    scope: str
    key: str
    kind: Kind
    limit: int
    """In tokens or micro-dollars."""
    window_end: float
    """Unix time at which this bucket's window (day or month) closes."""


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: str
    buckets: tuple[Bucket, ...]
    tokens: int
    usd_micros: int


@dataclass(frozen=True, slots=True)
class BucketStatus:
    scope: str
    kind: Kind
    limit: int
    spent: int
    reserved: int
    window_end: float

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.spent - self.reserved)


def usd_to_micros(usd: float) -> int:
    return round(usd * 1_000_000)


def window_end(kind: Kind, now: float) -> tuple[str, float]:
    """The window label (``2026-11-25`` or ``2026-11``) and its end as Unix time, in UTC."""
    dt = datetime.fromtimestamp(now, UTC)
    if kind == "daily_tokens":
        start = dt.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%d"), start.timestamp() + 86_400
    nxt = dt.replace(year=dt.year + (dt.month == 12), month=dt.month % 12 + 1, day=1)
    return dt.strftime("%Y-%m"), nxt.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def buckets_for(quotas: Sequence[Quota], now: float) -> list[Bucket]:
    out: list[Bucket] = []
    for quota in quotas:
        for kind, value in (("daily_tokens", quota.limits.daily_tokens), ("monthly_usd", quota.limits.monthly_usd)):
            if value is None:
                continue
            label, end = window_end(kind, now)  # type: ignore[arg-type]
            limit = int(value) if kind == "daily_tokens" else usd_to_micros(float(value))
            out.append(Bucket(quota.scope, f"{quota.scope}:{kind}:{label}", kind, limit, end))  # type: ignore[arg-type]
    return out


def _show(kind: Kind, amount: int) -> str:
    return f"{amount} tokens" if kind == "daily_tokens" else f"${amount / 1_000_000:.6f}"


class QuotaLedger(ABC):
    """Reserve/settle against daily token and monthly USD quotas; atomic across all buckets of a call."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    async def reserve(
        self, reservation_id: str, quotas: Sequence[Quota], *, tokens: int, cost_usd: float, ttl_s: float
    ) -> Reservation:
        """Reserve ``tokens`` and ``cost_usd`` (a run's upper bound) in every bucket of ``quotas``, or none.

        Raises:
            QuotaExceededError: some bucket cannot hold the reservation; ``retry_after`` is the time
                to its next window (or a second when only in-flight runs fill it).
        """
        if tokens < 0 or cost_usd < 0 or ttl_s <= 0:
            raise ValidationError("reservation amounts must not be negative and its ttl must be positive")
        now = self._clock()
        buckets = tuple(buckets_for(quotas, now))
        res = Reservation(reservation_id, buckets, tokens, usd_to_micros(cost_usd))
        if not buckets:
            return res
        amounts = [self._amount(b, tokens, res.usd_micros) for b in buckets]
        blocked = await self._reserve(reservation_id, buckets, amounts, ttl_s)
        if blocked is not None:
            index, only_inflight = blocked
            bucket, amount = buckets[index], amounts[index]
            what = "daily token" if bucket.kind == "daily_tokens" else "monthly spend"
            if amount > bucket.limit:  # no window will ever hold it: say so, instead of "retry tomorrow"
                unit = _show(bucket.kind, amount), _show(bucket.kind, bucket.limit)
                raise QuotaExceededError(
                    f"a run may use up to {unit[0]} but the whole {what} quota is {unit[1]}: raise the quota "
                    "or lower the template's max_tokens",
                    details={"quota": bucket.kind, "run_bound": amount, "limit": bucket.limit},
                )
            retry = RETRY_WHEN_INFLIGHT_S if only_inflight else max(1.0, bucket.window_end - now)
            raise QuotaExceededError(
                f"{what} quota exhausted", retry_after=round(retry, 3), details={"quota": bucket.kind}
            )
        return res

    async def settle(self, reservation: Reservation, *, tokens: int, cost_usd: float, op_id: str | None = None) -> None:
        """Replace the reservation by the real usage (also when the reservation already expired).

        With ``op_id`` (the accounting journal's ``run_id:attempt:kind``), a second settle of the same
        id changes nothing: a journal replayed after a crash between apply and mark counts once.
        """
        if reservation.buckets:
            micros = usd_to_micros(max(0.0, cost_usd))
            amounts = [self._amount(b, max(0, tokens), micros) for b in reservation.buckets]
            await self._settle(reservation.reservation_id, reservation.buckets, amounts, op_id)

    async def adjust(self, reservation: Reservation, *, tokens: int, usd_micros: int, op_id: str | None = None) -> None:
        """Add signed amounts to the spend of the reservation's buckets, leaving reservations alone.

        Corrects a charge someone else made for the same run: a reaper charged the bound of a run whose
        stalled worker then finished it with its real usage (amounts commute with the reaper's settle).
        Idempotent by ``op_id`` like ``settle``.
        """
        if reservation.buckets and (tokens or usd_micros):
            amounts = [self._amount(b, tokens, usd_micros) for b in reservation.buckets]
            await self._adjust(reservation.buckets, amounts, op_id)

    async def release(self, reservation: Reservation) -> None:
        """Drop the reservation without charging anything (the run never started)."""
        await self.settle(reservation, tokens=0, cost_usd=0.0)

    async def status(self, quotas: Sequence[Quota]) -> list[BucketStatus]:
        """Spent and reserved (expired reservations excluded) of the current window of every bucket."""
        buckets = buckets_for(quotas, self._clock())
        rows = await self._status(buckets) if buckets else []
        return [
            BucketStatus(b.scope, b.kind, b.limit, spent, reserved, b.window_end)
            for b, (spent, reserved) in zip(buckets, rows, strict=True)
        ]

    @staticmethod
    def _amount(bucket: Bucket, tokens: int, micros: int) -> int:
        return tokens if bucket.kind == "daily_tokens" else micros

    @abstractmethod
    async def _reserve(
        self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int], ttl_s: float
    ) -> tuple[int, bool] | None:
        """Atomically purge expired reservations, then reserve everywhere or nowhere.

        Returns ``None`` on success, else ``(index of the refusing bucket, refused only by in-flight)``.
        """

    @abstractmethod
    async def _settle(self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int], op_id: str | None) -> None:
        """Atomically drop reservation ``rid`` from every bucket and add ``amounts`` to their spend,
        unless ``op_id`` was applied already (then nothing)."""

    @abstractmethod
    async def _adjust(self, buckets: Sequence[Bucket], amounts: Sequence[int], op_id: str | None) -> None:
        """Atomically add the signed ``amounts`` to the spend of ``buckets``, once per ``op_id``."""

    @abstractmethod
    async def _status(self, buckets: Sequence[Bucket]) -> list[tuple[int, int]]:
        """``(spent, live reserved)`` per bucket."""

    async def ping(self) -> None:
        """One cheap round trip to the backend (``/readyz``); raises ``BackendError`` when it is down."""
        return None

    async def aclose(self) -> None:
        """Release connections."""
        return None
