"""Wiring: the stores of the configured state backend and the default chain, from ``Settings``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent_runtime.accounting import AccountingJournal, AccountingOutbox, quota_appliers
from agent_runtime.errors import ConfigurationError
from agent_runtime.limits.quota.base import QuotaLedger
from agent_runtime.limits.rate.base import RateLimiter
from agent_runtime.orchestration.middleware.auth import AuthMiddleware
from agent_runtime.orchestration.middleware.base import AgentMiddleware
from agent_runtime.orchestration.middleware.cost import CostEstimate, CostTrackingMiddleware, UsageRecorder
from agent_runtime.orchestration.middleware.logging import LoggingMiddleware
from agent_runtime.orchestration.middleware.rate_limit import RateLimitMiddleware
from agent_runtime.security.base import KeyStore
from agent_runtime.security.jwt import JwtVerifier
from agent_runtime.security.keys import KeyService
from agent_runtime.settings import Settings

__all__ = ["SecurityStores", "build_middlewares", "jwt_verifier_from", "open_security_stores"]


@dataclass
class SecurityStores:
    keys: KeyService
    limiter: RateLimiter
    ledger: QuotaLedger
    outbox: AccountingOutbox | None = None
    """The accounting journal every settle goes through (sqlite and redis backends)."""

    async def aclose(self) -> None:
        await self.keys.store.aclose()
        await self.limiter.aclose()
        if self.outbox is not None:
            await self.outbox.aclose()  # before the ledger: its last pass applies what is due
        await self.ledger.aclose()


def _keys(settings: Settings, store: KeyStore) -> KeyService:
    pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
    return KeyService(store, pepper=pepper, cache_s=settings.api_key_cache_s)


def open_security_stores(settings: Settings, *, redis_client: Any = None) -> SecurityStores:
    """Key store, rate limiter and quota ledger of ``settings.state_backend``.

    With ``sqlite`` the rate limiter stays in memory (per process): embedded mode is one host, and
    limits shared by several workers need Redis. With ``redis`` and ``reliability.rate_limit_on_backend_error
    = "fail_open"`` (the default) the Redis limiter falls back to a per-worker one while Redis is down.
    """
    from agent_runtime.limits.quota.memory import MemoryQuotaLedger
    from agent_runtime.limits.rate.memory import MemoryRateLimiter

    backend = settings.state_backend
    if backend == "memory":
        from agent_runtime.security.memory import MemoryKeyStore

        return SecurityStores(_keys(settings, MemoryKeyStore()), MemoryRateLimiter(), MemoryQuotaLedger())
    if backend == "sqlite":
        from agent_runtime.limits.quota.sqlite import SQLiteQuotaLedger
        from agent_runtime.security.sqlite import SQLiteKeyStore

        path = settings.sqlite_path
        # quotas in their own file: their inline transactions (see _sqlite) must never wait for a write
        # lock that an aiosqlite connection of this same process holds across an await
        quotas = SQLiteQuotaLedger(settings.data_dir / "quotas.sqlite3")
        return SecurityStores(
            _keys(settings, SQLiteKeyStore(path)), MemoryRateLimiter(), quotas, _outbox(settings, quotas)
        )
    if backend == "redis":
        from agent_runtime.limits.quota.redis import RedisQuotaLedger
        from agent_runtime.limits.rate.redis import RedisRateLimiter
        from agent_runtime.security.redis import RedisKeyStore

        url, cfg = settings.redis_url, settings.redis
        limiter: RateLimiter = RedisRateLimiter(url, cfg, client=redis_client)
        if settings.reliability.rate_limit_on_backend_error == "fail_open":
            from agent_runtime.limits.rate.failover import FailOpenRateLimiter

            limiter = FailOpenRateLimiter(limiter)
        ledger = RedisQuotaLedger(url, cfg, client=redis_client)
        keys = _keys(settings, RedisKeyStore(url, cfg, client=redis_client))
        return SecurityStores(keys, limiter, ledger, _outbox(settings, ledger))
    raise ConfigurationError(f"unknown state backend {backend!r}")


def _outbox(settings: Settings, ledger: QuotaLedger) -> AccountingOutbox:
    """The worker's accounting journal in ``DATA_DIR``, applying to ``ledger``. Workers of one host may
    share the file: appliers are idempotent, so an entry two of them replay counts once."""
    journal = AccountingJournal(
        settings.data_dir / "accounting-journal.sqlite3",
        max_entries=settings.reliability.accounting_journal_max_entries,
    )
    return AccountingOutbox(journal, quota_appliers(ledger))


def jwt_verifier_from(settings: Settings) -> JwtVerifier | None:
    if not (settings.jwt_secret or settings.jwt_public_key):
        return None
    return JwtVerifier(
        secret=settings.jwt_secret,
        public_key=settings.jwt_public_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )


def build_middlewares(
    settings: Settings,
    stores: SecurityStores,
    *,
    estimate: Callable[[Any], CostEstimate],
    usage_recorder: UsageRecorder | None = None,
) -> list[AgentMiddleware]:
    """The chain named by ``settings.middlewares`` (default: auth, rate_limit, cost, logging), in that order."""
    makers: dict[str, Callable[[], AgentMiddleware]] = {
        "auth": lambda: AuthMiddleware(stores.keys, jwt_verifier_from(settings)),
        "rate_limit": lambda: RateLimitMiddleware(
            stores.limiter, default_rpm=settings.default_rpm, default_tpm=settings.default_tpm, estimate=estimate
        ),
        "cost": lambda: CostTrackingMiddleware(
            stores.ledger,
            estimate,
            usage_recorder,
            reservation_ttl_s=max(60.0, 2 * settings.limits.run_timeout_s),
            outbox=stores.outbox,
        ),
        "logging": lambda: LoggingMiddleware(log_inputs=settings.log_inputs),
    }
    unknown = [name for name in settings.middlewares if name not in makers]
    if unknown:
        raise ConfigurationError(f"unknown middlewares {unknown}; choose from {sorted(makers)}")
    return [makers[name]() for name in settings.middlewares]
