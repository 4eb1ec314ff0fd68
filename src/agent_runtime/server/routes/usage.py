"""``GET /v1/usage``: the caller's spend (today, this month, grouped) and the quota left.

Scoped to the token's tenant and user; an admin may ask for another user or the whole tenant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from agent_runtime.errors import PermissionDeniedError
from agent_runtime.limits.quota.base import BucketStatus
from agent_runtime.monitoring.report import totals
from agent_runtime.orchestration.middleware.cost import CostTrackingMiddleware
from agent_runtime.runtime import Runtime
from agent_runtime.scopes import USAGE
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime, is_admin, require_scope
from agent_runtime.server.routes._docs import errors
from agent_runtime.server.schemas import UsageReport
from agent_runtime.types import AgentContext, Principal

__all__ = ["quotas_of", "router"]

router = APIRouter(tags=["usage"])
GroupBy = Literal["model", "template", "user", "day"]
USER_PATTERN = r"^(\*|[A-Za-z0-9_.@:\-]{1,200})$"


async def quotas_of(runtime: Runtime, principal: Principal) -> list[dict[str, Any]]:
    cost = next((m for m in runtime.executor.middlewares if isinstance(m, CostTrackingMiddleware)), None)
    if cost is None:
        return []
    quotas = cost.quotas_for(AgentContext(input="-", template="-", principal=principal))
    if not quotas:
        return []
    return [_quota_out(status) for status in await cost.ledger.status(quotas)]


def _quota_out(status: BucketStatus) -> dict[str, Any]:
    scale = 1e6 if status.kind == "monthly_usd" else 1.0
    scope = "tenant" if status.scope.endswith(":tenant") else ("key" if ":key:" in status.scope else "user")
    return {
        "scope": scope,
        "kind": status.kind,
        "limit": status.limit / scale,
        "spent": status.spent / scale,
        "reserved": status.reserved / scale,
        "remaining": status.remaining / scale,
        "resets_at": datetime.fromtimestamp(status.window_end, UTC),
    }


@router.get(
    "/v1/usage",
    response_model=UsageReport,
    responses=errors(401, 403, 422, 503),
    summary="Spend and quota left",
)
async def get_usage(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    by: GroupBy = "model",
    since: date | None = None,
    until: date | None = None,
    user: Annotated[
        str | None,
        Query(pattern=USER_PATTERN, description="Admins: another user, or `*` for the whole tenant."),
    ] = None,
) -> dict[str, Any]:
    require_scope(principal, USAGE)
    who: str | None = principal.user
    if user is not None and user != principal.user:
        if not is_admin(principal):
            raise PermissionDeniedError("usage of other users needs the admin scope")
        who = None if user == "*" else user
    tracker = runtime.cost_tracker
    empty_range = since is not None and until is not None and since > until
    rows = (
        [] if empty_range else await tracker.report(tenant=principal.tenant, user=who, since=since, until=until, by=by)
    )
    return {
        "tenant": principal.tenant,
        "user": who,
        "by": by,
        "rows": [row.to_dict() for row in rows],
        "totals": totals(rows, by).to_dict(),
        "spend": {
            "today_usd": await tracker.spend(principal.tenant, who, "day"),
            "month_usd": await tracker.spend(principal.tenant, who, "month"),
        },
        "quotas": await quotas_of(runtime, principal),
    }
