"""The default chain built from settings: order, short-circuits, and accounting of every kind of run end."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from agent_runtime.errors import AuthenticationError, ConfigurationError, ProviderError, RateLimitError
from agent_runtime.limits.quota.base import Quota, QuotaLimits
from agent_runtime.orchestration.middleware.auth import AuthMiddleware
from agent_runtime.orchestration.middleware.base import compose
from agent_runtime.orchestration.middleware.cost import CostEstimate, CostTrackingMiddleware
from agent_runtime.orchestration.middleware.defaults import (
    build_middlewares,
    jwt_verifier_from,
    open_security_stores,
)
from agent_runtime.orchestration.middleware.logging import JsonFormatter, LoggingMiddleware
from agent_runtime.orchestration.middleware.rate_limit import RateLimitMiddleware
from agent_runtime.security.keys import KeyService, hash_key
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, AgentResult
from tests.orchestration.middleware._mw_helpers import FakeRun, ctx


def bound(context: AgentContext) -> CostEstimate:
    return CostEstimate(tokens=500, cost_usd=0.05)


@pytest.fixture
def run_log() -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("agent_runtime.runs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


@pytest.mark.parametrize("backend", ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_default_chain_on_every_backend(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_url") if backend == "redis" else "redis://unused:1/0"
    settings = Settings(state_backend=backend, data_dir=tmp_path, redis_url=url, default_rpm=2)
    stores = open_security_stores(settings)
    recorded: list[AgentResult] = []
    chain = build_middlewares(settings, stores, estimate=bound, usage_recorder=lambda c, r: recorded.append(r))
    assert [type(m) for m in chain] == [AuthMiddleware, RateLimitMiddleware, CostTrackingMiddleware, LoggingMiddleware]
    plaintext, record = await stores.keys.create_key("acme", "alice", ["agents:run:*"], daily_tokens=1000)
    handler = compose(FakeRun(), chain)
    assert (await handler(ctx(credentials=plaintext))).status == "completed"
    await handler(ctx(credentials=plaintext))
    with pytest.raises(RateLimitError):
        await handler(ctx(credentials=plaintext))
    assert len(recorded) == 2
    (tokens,) = await stores.ledger.status([Quota(f"{{acme}}:key:{record.key_id}", QuotaLimits(1000))])
    assert (tokens.spent, tokens.reserved) == (200, 0)
    await stores.aclose()


async def test_order_auth_failures_cost_nothing_downstream(run_log: io.StringIO) -> None:
    stores = open_security_stores(Settings(state_backend="memory"))
    chain = build_middlewares(Settings(state_backend="memory", default_rpm=1), stores, estimate=bound)
    inner = FakeRun()
    handler = compose(inner, chain)
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            await handler(ctx(credentials="ar_0123456789abcdef_" + "x" * 43))
    plaintext, _ = await stores.keys.create_key("acme", "alice", ["*"])
    await handler(ctx(credentials=plaintext))  # the failed attempts did not use the rate limit
    assert len(inner.calls) == 1
    assert len(run_log.getvalue().splitlines()) == 1  # logging is innermost: refused runs never reached it


async def test_stream_abandoned_after_two_tokens_is_costed_and_logged(run_log: io.StringIO) -> None:
    stores = open_security_stores(Settings(state_backend="memory"))
    recorded: list[AgentResult] = []
    chain = build_middlewares(
        Settings(state_backend="memory"), stores, estimate=bound, usage_recorder=lambda c, r: recorded.append(r)
    )
    plaintext, record = await stores.keys.create_key("acme", "alice", ["*"], daily_tokens=10_000)
    abandoned = FakeRun(tokens=(25, 2), cost_usd=0.0003, status="cancelled")
    await compose(abandoned, chain)(ctx(credentials=plaintext, streaming=True))
    assert [(r.status, r.usage.output_tokens) for r in recorded] == [("cancelled", 2)]
    (line,) = run_log.getvalue().splitlines()
    assert json.loads(line)["status"] == "cancelled" and json.loads(line)["output_tokens"] == 2
    (tokens,) = await stores.ledger.status([Quota(f"{{acme}}:key:{record.key_id}", QuotaLimits(10_000))])
    assert (tokens.spent, tokens.reserved) == (27, 0)
    assert plaintext not in run_log.getvalue()


async def test_errors_travel_outward_through_every_layer(run_log: io.StringIO) -> None:
    stores = open_security_stores(Settings(state_backend="memory"))
    chain = build_middlewares(Settings(state_backend="memory"), stores, estimate=bound)
    plaintext, _ = await stores.keys.create_key("acme", "alice", ["*"])
    with pytest.raises(ProviderError, match="down"):
        await compose(FakeRun(error=ProviderError("down")), chain)(ctx(credentials=plaintext))
    with pytest.raises(ZeroDivisionError):  # an unexpected error fails the run, it does not hang it
        await compose(FakeRun(error=ZeroDivisionError()), chain)(ctx(credentials=plaintext))
    lines = [json.loads(line) for line in run_log.getvalue().splitlines()]
    assert [line["error_code"] for line in lines] == ["provider_error", "internal_error"]


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        build_middlewares(
            Settings(state_backend="memory", middlewares=["auth", "nope"]),
            open_security_stores(Settings(state_backend="memory")),
            estimate=bound,
        )
    assert jwt_verifier_from(Settings()) is None
    verifier = jwt_verifier_from(Settings(jwt_secret="k" * 32, jwt_issuer="me"))
    assert verifier is not None and verifier.algorithms == ["HS256"]


async def test_key_pepper_and_cache_come_from_settings() -> None:
    stores = open_security_stores(Settings(state_backend="memory", api_key_pepper="pepper-1", api_key_cache_s=0))
    plaintext, record = await stores.keys.create_key("acme", "alice", ["*"])
    assert record.key_hash == hash_key(plaintext, b"pepper-1") != hash_key(plaintext)
    await KeyService(stores.keys.store, pepper="pepper-1").revoke_key(record.key_id)  # another process
    with pytest.raises(AuthenticationError, match="revoked"):  # cache off: seen at once
        await stores.keys.authenticate(plaintext)
