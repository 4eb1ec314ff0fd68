"""Rate limiters. Only Redis shares limits across workers; on the embedded and SQL engines the limiter
is per process (one host, or put ``state_urls.rate_limits`` on Redis: the usual production split)."""

from __future__ import annotations

from typing import Any

from agent_runtime.backends._registry import BackendTarget, Builder

__all__ = ["BUILDERS"]


def _local(target: BackendTarget) -> Any:
    from agent_runtime.limits.rate.memory import MemoryRateLimiter

    return MemoryRateLimiter()


def _redis(target: BackendTarget) -> Any:
    """With ``reliability.rate_limit_on_backend_error = "fail_open"`` (the default) it falls back to a
    per-worker limiter while Redis is down."""
    from agent_runtime.limits.rate.redis import RedisRateLimiter

    limiter: Any = RedisRateLimiter(target.url.raw, target.settings.redis, client=target.options.get("redis_client"))
    if target.settings.reliability.rate_limit_on_backend_error == "fail_open":
        from agent_runtime.limits.rate.failover import FailOpenRateLimiter

        limiter = FailOpenRateLimiter(limiter)
    return limiter


BUILDERS: dict[str, Builder] = {"memory": _local, "sqlite": _local, "redis": _redis, "postgresql": _local}
