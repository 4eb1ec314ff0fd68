"""Quota enforcement by reserve-then-settle, and the per-attempt usage hook monitoring listens to.

Before the run (each attempt of a retried run is its own run here), the upper bound of its usage
(input estimate + the template's max output tokens, priced) is reserved in the principal's daily
token and monthly USD quotas and the tenant's. After it (completed, failed, or a stream its consumer
abandoned) the reservation is settled to the real usage that the executor computed. Cost in USD is
computed by the executor from the price table; this layer only moves the numbers.

A run the reaper claimed as abandoned while its worker was only stalled (see ``orchestration.runs``)
was already charged by the reaper; its settle then adds just the difference between its real usage
and that charge (negative when the bound was not all used), so the quota holds the real usage once
(unless the reaper's own settle failed too: then the run is under-counted by its bound; both log).
The usage ledger has no row from the reaper, so the recorder's one row stays the only one.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agent_runtime._redis import check_key_part
from agent_runtime.accounting import AccountingOutbox, adjust_entry, settle_entry
from agent_runtime.accounting.attempts import (
    RESERVATION_KEY,
    error_usage,
    failed_result,
    reaped_charge,
    result_tokens,
    run_shielded,
)
from agent_runtime.limits.quota.base import Quota, QuotaLedger, QuotaLimits, Reservation, buckets_for, usd_to_micros
from agent_runtime.orchestration.middleware.base import AgentMiddleware, NextCall
from agent_runtime.orchestration.recovery import RECOVER_KEY, SALVAGED_KEY
from agent_runtime.types import AgentContext, AgentResult, Usage

__all__ = ["CostEstimate", "CostTrackingMiddleware", "UsageRecorder", "quota_usage", "upper_bound_estimate"]

UsageRecorder = Callable[[AgentContext, AgentResult], object]
"""Called after every attempt; may return an awaitable (awaited) or anything else (ignored)."""
STATE_KEY = RESERVATION_KEY


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """Upper bound of one run's usage: what is reserved against the quotas before it starts."""

    tokens: int
    cost_usd: float


def quota_usage(result: AgentResult) -> Usage:
    """What an attempt's settle charges to quotas: its usage, plus, for an attempt that resumed a dead one
    from its checkpoint, the model calls the dead attempt finished (its usage entry is its own, but it
    never settled): spend caps count every billed step once."""
    salvaged = result.metadata.get(SALVAGED_KEY)
    return result.usage.add(salvaged) if isinstance(salvaged, Usage) else result.usage


def upper_bound_estimate(
    text: str, *, max_output_tokens: int, usd_per_input_token: float, usd_per_output_token: float, overhead: int = 64
) -> CostEstimate:
    """A conservative bound: one token per UTF-8 byte of input (tokenizers never do worse), plus the
    prompt overhead and the full output allowance."""
    input_tokens = len(text.encode()) + overhead
    return CostEstimate(
        input_tokens + max_output_tokens,
        input_tokens * usd_per_input_token + max_output_tokens * usd_per_output_token,
    )


class CostTrackingMiddleware(AgentMiddleware):
    """Reserve before, settle after, report every attempt's usage.

    Args:
        ledger: memory, SQLite or Redis ``QuotaLedger``.
        estimate: ``estimate(context) -> CostEstimate``, the run's upper bound (executor's price table).
        usage_recorder: called as ``usage_recorder(context, result)`` after every attempt, failed
            ones included (with a synthetic ``status="failed"`` result); may be async.
        tenant_quotas: quotas shared by all keys of a tenant (``"*"`` for every tenant not listed),
            on top of the principal's own ``daily_tokens``/``monthly_usd``.
        reservation_ttl_s: how long a reservation counts if its process dies before settling; keep it
            above the run timeout.
        outbox: when given, every settle/adjust is first journalled there (durable before the response
            is returned), then applied; a failed apply is retried until the ledger is back, and a new
            run is refused with 503 while the journal is full.
    """

    name = "cost"

    def __init__(
        self,
        ledger: QuotaLedger,
        estimate: Callable[[AgentContext], CostEstimate],
        usage_recorder: UsageRecorder | None = None,
        *,
        tenant_quotas: Mapping[str, QuotaLimits] | None = None,
        reservation_ttl_s: float = 600.0,
        outbox: AccountingOutbox | None = None,
    ) -> None:
        self.outbox = outbox
        self.ledger = ledger
        self.estimate = estimate
        self.usage_recorder = usage_recorder
        self.tenant_quotas = dict(tenant_quotas or {})
        self.reservation_ttl_s = reservation_ttl_s

    def quotas_for(self, context: AgentContext) -> list[Quota]:
        principal = context.principal
        if principal is None:
            return []
        tenant = check_key_part(principal.tenant, "tenant")
        quotas: list[Quota] = []
        own = QuotaLimits(principal.daily_tokens, principal.monthly_usd)
        if own != QuotaLimits():
            who = f"key:{principal.key_id}" if principal.key_id else f"user:{principal.user}"
            quotas.append(Quota(f"{{{tenant}}}:{check_key_part(who, 'principal')}", own))
        shared = self.tenant_quotas.get(tenant, self.tenant_quotas.get("*"))
        if shared is not None and shared != QuotaLimits():
            quotas.append(Quota(f"{{{tenant}}}:tenant", shared))
        return quotas

    async def process(self, context: AgentContext, next_call: NextCall) -> AgentResult:
        reservation: Reservation | None = None
        quotas = self.quotas_for(context)
        if quotas:
            if self.outbox is not None:
                self.outbox.check_capacity()
            bound = self.estimate(context)
            await self._release_predecessor(context, quotas)
            reservation = await self.ledger.reserve(
                f"{context.run_id}:{context.attempt}",
                quotas,
                tokens=bound.tokens,
                cost_usd=bound.cost_usd,
                ttl_s=self.reservation_ttl_s,
            )
            context.state[STATE_KEY] = reservation
        try:
            result = await next_call(context)
        except BaseException as exc:
            usage = error_usage(exc)
            if reservation is not None:
                await run_shielded(self._settle(context, reservation, usage), "quota settle")
            if self.usage_recorder is not None:
                await run_shielded(self._record(context, failed_result(context, exc, usage)), "usage recorder")
            raise
        # The run has produced its output: accounting failures are logged, never turned into a failed run.
        if reservation is not None:
            await run_shielded(self._settle(context, reservation, quota_usage(result)), "quota settle")
        if self.usage_recorder is not None:
            await run_shielded(self._record(context, result), "usage recorder")
        return result

    async def _release_predecessor(self, context: AgentContext, quotas: list[Quota]) -> None:
        """A queued run resumed after its worker died: drop the dead attempt's reservation now (what that
        attempt spent is settled by this one, ``quota_usage``) instead of letting it hold quota until
        its TTL or the reaper."""
        if not context.metadata.get(RECOVER_KEY) or context.attempt <= 1:
            return
        buckets = tuple(buckets_for(quotas, time.time()))
        stale = Reservation(f"{context.run_id}:{context.attempt - 1}", buckets, 0, 0)
        await run_shielded(self.ledger.release(stale), "quota release")

    async def _settle(self, context: AgentContext, reservation: Reservation, usage: Usage) -> None:
        tokens = result_tokens(usage)
        charged = await reaped_charge(context)
        run_id, attempt = context.run_id, context.attempt
        if charged is not None and charged != (0, 0):  # the reaper charged it already: settle the difference
            micros = usd_to_micros(max(0.0, usage.cost_usd))
            delta = max(0, tokens) - charged[0], micros - charged[1]
            if self.outbox is not None:
                await self.outbox.submit(
                    adjust_entry(run_id, attempt, reservation, tokens=delta[0], usd_micros=delta[1])
                )
            else:
                await self.ledger.adjust(
                    reservation, tokens=delta[0], usd_micros=delta[1], op_id=f"{run_id}:{attempt}:adjust"
                )
        elif self.outbox is not None:
            await self.outbox.submit(settle_entry(run_id, attempt, reservation, tokens=tokens, cost_usd=usage.cost_usd))
        else:
            await self.ledger.settle(
                reservation, tokens=tokens, cost_usd=usage.cost_usd, op_id=f"{run_id}:{attempt}:settle"
            )

    async def _record(self, context: AgentContext, result: AgentResult) -> None:
        assert self.usage_recorder is not None
        outcome = self.usage_recorder(context, result)
        if inspect.isawaitable(outcome):
            await outcome
