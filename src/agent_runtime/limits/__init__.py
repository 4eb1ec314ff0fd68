"""Admission control: rate limits (requests and tokens per minute, GCRA) and quotas (reserve-then-settle)."""

from __future__ import annotations

from agent_runtime.limits.quota.base import Quota, QuotaLedger, QuotaLimits, Reservation
from agent_runtime.limits.quota.memory import MemoryQuotaLedger
from agent_runtime.limits.rate.base import Decision, Limit, RateLimiter
from agent_runtime.limits.rate.memory import MemoryRateLimiter

__all__ = [
    "Decision",
    "Limit",
    "MemoryQuotaLedger",
    "MemoryRateLimiter",
    "Quota",
    "QuotaLedger",
    "QuotaLimits",
    "RateLimiter",
    "Reservation",
]
