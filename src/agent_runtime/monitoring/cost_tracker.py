"""CostTracker: prices a run's real usage and writes it to the usage ledger.

The middleware calls :meth:`CostTracker.record` once per attempt, after the attempt ends (completed,
failed with partial usage, or a stream its consumer abandoned), so retries are each charged and a
stream is charged for what it spent. Quota enforcement (reserve, then settle) is the quota store's job;
this is the ledger the reports and ``spend`` read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from agent_runtime.monitoring.pricing import PriceTable
from agent_runtime.monitoring.usage import GroupBy, Period, UsageRecord, UsageRow, UsageStore
from agent_runtime.monitoring.usage.base import today_utc
from agent_runtime.types import AgentResult, Principal, Usage

if TYPE_CHECKING:
    from agent_runtime.settings import Settings

__all__ = ["ANONYMOUS_USER", "DEFAULT_TENANT", "CostTracker", "build_cost_tracker"]

DEFAULT_TENANT = "default"
"""Tenant charged for runs without a principal (no auth middleware in the chain)."""
ANONYMOUS_USER = "anonymous"


class CostTracker:
    """Prices usage with ``price_table`` and records it in ``usage_store``.

    Args:
        price_table: USD per million tokens per model.
        usage_store: the ledger backend (memory, SQLite or Redis).
        clock: the current UTC day; injectable for tests.
    """

    def __init__(
        self, price_table: PriceTable, usage_store: UsageStore, *, clock: Callable[[], date] = today_utc
    ) -> None:
        self.price_table = price_table
        self.usage_store = usage_store
        self.clock = clock

    def cost(self, model: str, usage: Usage) -> float:
        """USD for ``usage`` on ``model`` (cached input tokens at the cached price)."""
        return self.price_table.cost(model, usage.input_tokens, usage.output_tokens, usage.cached_tokens)

    def price(
        self,
        result: AgentResult,
        principal: Principal | None = None,
        *,
        tenant: str | None = None,
        user: str | None = None,
        template: str | None = None,
        day: date | None = None,
    ) -> list[UsageRecord]:
        """The ledger rows of one run (one per model it used; the run counted on the first), priced;
        the total is also written to ``result.usage.cost_usd``."""
        records = [
            UsageRecord(
                tenant=tenant or (principal.tenant if principal else DEFAULT_TENANT),
                user=user or (principal.user if principal else ANONYMOUS_USER),
                template=template or result.template,
                model=model,
                day=day or self.clock(),
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
                cost_usd=self.cost(model, usage),
                runs=1 if index == 0 else 0,
            )
            for index, (model, usage) in enumerate(result.usage_by_model().items())
        ]
        result.usage.cost_usd = sum(r.cost_usd for r in records)
        return records

    async def record(
        self,
        result: AgentResult,
        principal: Principal | None = None,
        *,
        tenant: str | None = None,
        user: str | None = None,
        template: str | None = None,
        day: date | None = None,
    ) -> UsageRecord:
        """Charge one run (or one attempt) to its tenant and user: one ledger entry per model it used
        (a workflow's steps may use several; the run is counted on the first), and return the first.
        Each attempt that spent tokens counts as a run, a failed one too (it was billed).

        The cost is computed from the result's tokens and also written to ``result.usage.cost_usd``,
        so logs, metrics and the ledger all show the same figure.

        Raises:
            ValidationError: a tenant, user, template or model id is malformed.
            BackendError: the ledger backend failed.
        """
        records = self.price(result, principal, tenant=tenant, user=user, template=template, day=day)
        for record in records:
            await self.usage_store.add(record)
        return records[0]

    async def report(
        self,
        *,
        tenant: str | None = None,
        user: str | None = None,
        since: date | None = None,
        until: date | None = None,
        by: GroupBy = "model",
    ) -> list[UsageRow]:
        """Usage per ``by`` value; pass ``tenant`` for anyone but an admin (callers enforce that)."""
        return await self.usage_store.report(tenant=tenant, user=user, since=since, until=until, by=by)

    async def spend(self, tenant: str, user: str | None = None, period: Period = "day") -> float:
        """USD spent in the current UTC day or month."""
        return await self.usage_store.spend(tenant, user, period=period, today=self.clock())

    async def aclose(self) -> None:
        await self.usage_store.aclose()


def build_cost_tracker(settings: Settings) -> CostTracker:
    """Prices from the bundled table plus ``settings.price_file``; the ledger on the usage backend."""
    from agent_runtime.monitoring.usage import build_usage_store

    return CostTracker(PriceTable.load(settings.price_file), build_usage_store(settings))
