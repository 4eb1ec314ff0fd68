"""Requests and tokens per minute, per key (or user), per tenant and per template, before and after a run.

Before the run: one atomic ``acquire`` of a request in every applicable requests/min limit, and one
atomic ``reserve`` of the run's token upper bound (the same ``estimate`` the quotas reserve) in every
tokens/min limit, so concurrent runs cannot all pass on the same free tokens. After the run, also when
it failed or its stream was abandoned, the hold is settled to the real tokens (the unused part is
given back). A bound above the smallest limit is cut to that limit, so such a run still fits an idle
limit; it may then overdraw it by at most its bound, and the limit refuses runs until it refills.

Limit keys carry the tenant as a ``{hash tag}`` so one Redis Cluster slot decides a run atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agent_runtime._redis import check_key_part
from agent_runtime.accounting.attempts import error_usage, result_tokens, run_shielded
from agent_runtime.errors import RateLimitError
from agent_runtime.limits.rate.base import Decision, Hold, Limit, RateLimiter
from agent_runtime.orchestration.middleware.base import AgentMiddleware, NextCall
from agent_runtime.orchestration.middleware.cost import CostEstimate
from agent_runtime.types import AgentContext, AgentResult

__all__ = ["RateLimitMiddleware", "RateLimits"]


@dataclass(frozen=True, slots=True)
class RateLimits:
    rpm: int | None = None
    tpm: int | None = None


class RateLimitMiddleware(AgentMiddleware):
    """Enforce requests/min and tokens/min.

    Args:
        limiter: memory or Redis ``RateLimiter``.
        default_rpm: per-key limit when the principal carries none (``None``: unlimited).
        default_tpm: same for tokens per minute.
        per_tenant: limits shared by all keys of a tenant (``"*"`` applies to every tenant not listed).
        per_template: limits per principal and template, on top of the key's own.
        estimate: ``estimate(context) -> CostEstimate``, the run's upper bound, whose tokens are
            reserved in the tokens/min limits (default: 1 token, i.e. a run is refused only when the
            limit is already spent).
    """

    name = "rate_limit"

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        default_rpm: int | None = None,
        default_tpm: int | None = None,
        per_tenant: Mapping[str, RateLimits] | None = None,
        per_template: Mapping[str, RateLimits] | None = None,
        estimate: Callable[[AgentContext], CostEstimate] | None = None,
    ) -> None:
        self.limiter = limiter
        self.estimate = estimate
        self.default = RateLimits(default_rpm, default_tpm)
        self.per_tenant = dict(per_tenant or {})
        self.per_template = dict(per_template or {})

    def limits_for(self, context: AgentContext) -> tuple[list[Limit], list[Limit]]:
        """The requests/min and tokens/min limits of this run; each limit's key starts with its scope."""
        principal = context.principal
        tenant = check_key_part(principal.tenant if principal else "anonymous", "tenant")
        if principal is not None and principal.key_id:
            who = "key:" + check_key_part(principal.key_id, "key id")
        else:
            who = "user:" + check_key_part(principal.user if principal else "anonymous", "user")
        own = RateLimits(
            principal.rpm if principal and principal.rpm is not None else self.default.rpm,
            principal.tpm if principal and principal.tpm is not None else self.default.tpm,
        )
        template = check_key_part(context.template, "template")
        scopes = [
            (f"{{{tenant}}}:{who}", own),
            (f"{{{tenant}}}:tenant", self.per_tenant.get(tenant, self.per_tenant.get("*"))),
            (f"{{{tenant}}}:{who}:tpl:{template}", self.per_template.get(template)),
        ]
        rpm: list[Limit] = []
        tpm: list[Limit] = []
        for key, limits in scopes:
            if limits is not None and limits.rpm:
                rpm.append(Limit(f"{key}:rpm", limits.rpm))
            if limits is not None and limits.tpm:
                tpm.append(Limit(f"{key}:tpm", limits.tpm))
        return rpm, tpm

    async def process(self, context: AgentContext, next_call: NextCall) -> AgentResult:
        rpm, tpm = self.limits_for(context)
        if rpm:
            _raise_if_refused(await self.limiter.acquire(rpm), rpm, "request")
        if not tpm:
            return await next_call(context)
        hold = await self.limiter.reserve(tpm, self._bound(context, tpm))
        _raise_if_refused(hold.decision, tpm, "token")
        try:
            result = await next_call(context)
        except BaseException as exc:
            await self._settle(hold, result_tokens(error_usage(exc)))
            raise
        await self._settle(hold, result_tokens(result.usage))
        return result

    def _bound(self, context: AgentContext, tpm: list[Limit]) -> int:
        """Tokens to hold for this run: its upper bound, cut to the smallest tokens/min limit."""
        tokens = self.estimate(context).tokens if self.estimate is not None else 1
        return max(1, min(tokens, *(lim.limit for lim in tpm)))

    async def _settle(self, hold: Hold, used: int) -> None:
        # The run has ended: a failed write is logged (the hold stays charged), never the run's error.
        await run_shielded(self.limiter.settle(hold, used), "rate limit token settle")


def _scope_of(limit: Limit) -> str:
    """``key``, ``tenant`` or ``template``, read back from the limit key built by ``limits_for``."""
    if ":tpl:" in limit.key:
        return "template"
    return "tenant" if limit.key.endswith((":tenant:rpm", ":tenant:tpm")) else "key"


def _raise_if_refused(decision: Decision, limits: list[Limit], what: str) -> None:
    if decision.allowed:
        return
    scope = _scope_of(limits[decision.blocked_by or 0])
    raise RateLimitError(
        f"{scope} {what} rate limit exceeded",
        retry_after=round(max(decision.retry_after, 0.001), 3),
        details={"scope": scope, "limit": "rpm" if what == "request" else "tpm"},
    )
