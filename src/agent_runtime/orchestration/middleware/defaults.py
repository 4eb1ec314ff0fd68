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
    """The accounting journal every settle goes through (every quota backend but memory)."""

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
    """Key store, rate limiter and quota ledger of ``settings``, each built on its family's URL by
    ``agent_runtime.backends`` (see ``backends/rate_limits.py`` for where limits are shared).

    Every ledger but the in-memory one settles through the worker's accounting journal.
    """
    from agent_runtime.backends import build, url_for

    options = {"redis_client": redis_client} if redis_client is not None else {}
    keys = _keys(settings, build("keys", settings, **options))
    limiter: RateLimiter = build("rate_limits", settings, **options)
    ledger: QuotaLedger = build("quotas", settings, **options)
    outbox = None if url_for(settings, "quotas").engine == "memory" else _outbox(settings, ledger)
    return SecurityStores(keys, limiter, ledger, outbox)


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
