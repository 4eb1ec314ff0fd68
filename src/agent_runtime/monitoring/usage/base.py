"""The usage ledger: what every run spent, by tenant, user, template, model and day.

Backends only store and scan counters keyed by ``(tenant, day, user, template, model)``; validation,
filtering, aggregation and spend periods live here once, so memory, SQLite and Redis answer the same
questions the same way.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args

from agent_runtime._redis import check_key_part
from agent_runtime.errors import ValidationError

__all__ = [
    "GroupBy",
    "Period",
    "UsageQuery",
    "UsageRecord",
    "UsageRow",
    "UsageStore",
    "aggregate",
    "period_start",
    "today_utc",
]

GroupBy = Literal["model", "template", "user", "day", "tenant"]
Period = Literal["day", "month"]
_GROUP_BY: tuple[str, ...] = get_args(GroupBy)
_MODEL = re.compile(r"^[^\s|{}\x00-\x1f\x7f]{1,200}$")
"""Model names may hold ``/`` (``meta-llama/...``) but never the ``|`` field separator or whitespace."""


def today_utc() -> date:
    return datetime.now(UTC).date()


def period_start(period: Period, today: date) -> date:
    if period == "day":
        return today
    if period == "month":
        return today.replace(day=1)
    raise ValidationError(f"unknown period {period!r}; expected 'day' or 'month'")


@dataclass(slots=True)
class UsageRecord:
    """One ledger entry: counters for a ``(tenant, day, user, template, model)`` cell."""

    tenant: str
    user: str
    template: str
    model: str
    day: date
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    runs: int = 1

    @property
    def cell(self) -> tuple[str, date, str, str, str]:
        return (self.tenant, self.day, self.user, self.template, self.model)

    def validate(self) -> UsageRecord:
        """Raise ``ValidationError`` for ids that could escape a Redis key or a ledger field."""
        check_key_part(self.tenant, "tenant id")
        check_key_part(self.user, "user id")
        check_key_part(self.template, "template name")
        if not isinstance(self.model, str) or not _MODEL.fullmatch(self.model):
            raise ValidationError("malformed model name: 1-200 printable characters without spaces or '|'")
        if min(self.input_tokens, self.output_tokens, self.cached_tokens, self.runs) < 0 or self.cost_usd < 0:
            raise ValidationError("usage counters must not be negative")
        return self


@dataclass(slots=True)
class UsageRow:
    """Usage aggregated over one value of the ``by`` dimension (e.g. one model)."""

    by: GroupBy
    key: str
    runs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["total_tokens"] = self.total_tokens
        data["cost_usd"] = round(self.cost_usd, 10)
        return data


def aggregate(records: Iterable[UsageRecord], by: GroupBy) -> list[UsageRow]:
    """Sum records per value of ``by``, sorted by that value (days chronologically)."""
    if by not in _GROUP_BY:
        raise ValidationError(f"cannot group usage by {by!r}; expected one of {', '.join(_GROUP_BY)}")
    rows: dict[str, UsageRow] = {}
    for rec in records:
        key = rec.day.isoformat() if by == "day" else str(getattr(rec, by))
        row = rows.get(key)
        if row is None:
            row = rows[key] = UsageRow(by=by, key=key)
        row.runs += rec.runs
        row.input_tokens += rec.input_tokens
        row.output_tokens += rec.output_tokens
        row.cached_tokens += rec.cached_tokens
        row.cost_usd += rec.cost_usd
    return [rows[key] for key in sorted(rows)]


def _as_date(value: date | None, what: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if not isinstance(value, date):
        raise ValidationError(f"{what} must be a date")
    return value


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Validated filters of a scan; ``matches`` is the one definition of what a filter means."""

    tenant: str | None = None
    user: str | None = None
    since: date | None = None
    until: date | None = None

    def matches(self, rec: UsageRecord) -> bool:
        return (
            (self.tenant is None or rec.tenant == self.tenant)
            and (self.user is None or rec.user == self.user)
            and (self.since is None or rec.day >= self.since)
            and (self.until is None or rec.day <= self.until)
        )


class UsageStore(ABC):
    """A usage ledger backend. Writes are increments, so concurrent workers never lose an update."""

    async def add(self, record: UsageRecord, *, op_id: str | None = None) -> None:
        """Add a record's counters to its cell (creating it); with ``op_id`` (an accounting journal
        entry's), once: adding the same id again changes nothing, so a replayed entry counts once."""
        await self._add(record.validate(), op_id)

    async def flush(self) -> None:
        """Wait until every record added so far is stored (write-behind backends); others: nothing."""
        return None

    async def records(
        self,
        *,
        tenant: str | None = None,
        user: str | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> list[UsageRecord]:
        """Ledger cells matching the filters (``since``/``until`` inclusive, UTC days)."""
        query = UsageQuery(
            tenant=None if tenant is None else check_key_part(tenant, "tenant id"),
            user=None if user is None else check_key_part(user, "user id"),
            since=_as_date(since, "since"),
            until=_as_date(until, "until"),
        )
        if query.since and query.until and query.since > query.until:
            raise ValidationError("since must not be after until")
        return await self._scan(query)

    async def report(
        self,
        *,
        tenant: str | None = None,
        user: str | None = None,
        since: date | None = None,
        until: date | None = None,
        by: GroupBy = "model",
    ) -> list[UsageRow]:
        """Usage summed per ``by`` value over the matching cells."""
        if by not in _GROUP_BY:
            raise ValidationError(f"cannot group usage by {by!r}; expected one of {', '.join(_GROUP_BY)}")
        return aggregate(await self.records(tenant=tenant, user=user, since=since, until=until), by)

    async def spend(
        self, tenant: str, user: str | None = None, *, period: Period = "day", today: date | None = None
    ) -> float:
        """USD spent by a tenant (or one of its users) in the current UTC day or month."""
        today = today or today_utc()
        cells = await self.records(tenant=tenant, user=user, since=period_start(period, today), until=today)
        return sum(rec.cost_usd for rec in cells)

    async def ping(self) -> None:
        """One cheap round trip to the backend (``/readyz``); raises ``BackendError`` when it is down."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""

    @abstractmethod
    async def _add(self, record: UsageRecord, op_id: str | None) -> None:
        """Atomically increment the record's cell, unless ``op_id`` was added already."""

    @abstractmethod
    async def _scan(self, query: UsageQuery) -> list[UsageRecord]:
        """Every cell matching ``query``."""
