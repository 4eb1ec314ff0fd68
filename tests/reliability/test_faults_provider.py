"""A failing model provider (a real HTTP server speaking the OpenAI wire format): ``Retry-After`` is
honoured, a per-tenant retry budget stops retry storms, and a template's fallback model answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runtime.agents.templates import AgentTemplate
from agent_runtime.errors import ProviderError, ProviderRateLimitError
from agent_runtime.orchestration.executor import RetryPolicy
from agent_runtime.runtime import Runtime
from agent_runtime.settings import ReliabilitySettings, Settings
from agent_runtime.types import AgentContext, Principal
from tests.reliability._faults import FakeProvider

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    server = FakeProvider()
    yield server
    server.close()


async def _runtime(tmp_path: Path, provider: FakeProvider, *, budget: int | None = 60, **template: object) -> Runtime:
    settings = Settings(
        state_backend="memory",
        data_dir=tmp_path,
        middlewares=["rate_limit", "cost", "logging"],
        reliability=ReliabilitySettings(retry_budget_per_minute=budget),
    )
    runtime = await Runtime.create(settings, with_event_bus=False)
    runtime.factory.register_template(AgentTemplate(name="remote", model=provider.model, **template))
    return runtime


def _run(tenant: str = "acme") -> AgentContext:
    return AgentContext(input="hello", template="remote", principal=Principal(tenant=tenant, user="u", scopes=["*"]))


async def test_retry_after_of_a_429_is_honoured(tmp_path: Path, provider: FakeProvider) -> None:
    provider.status, provider.retry_after = 429, 1
    runtime = await _runtime(tmp_path, provider, max_retries=1)
    runtime.executor.retry_policy = RetryPolicy(base_delay_s=0.001, max_delay_s=0.5)  # backoff alone: ~1 ms
    try:
        with pytest.raises(ProviderRateLimitError) as caught:
            await runtime.executor.execute_with_retry(_run())
        assert caught.value.retry_after == 1.0 and caught.value.details["attempts"] == 2
        first, second = provider.hits
        assert second - first >= 0.95  # waited the provider's Retry-After, not the ~1 ms backoff
        provider.retry_after = 30  # longer than the policy waits (4 x 0.5 s): handed back at once
        with pytest.raises(ProviderRateLimitError) as caught:
            await runtime.executor.execute_with_retry(_run())
        assert caught.value.retry_after == 30.0 and caught.value.details["attempts"] == 1
    finally:
        await runtime.aclose()


async def test_retry_budget_stops_a_retry_storm_per_tenant(tmp_path: Path, provider: FakeProvider) -> None:
    provider.status = 503  # retriable server error, no Retry-After
    runtime = await _runtime(tmp_path, provider, budget=3, max_retries=3)
    runtime.executor.retry_policy = RetryPolicy(base_delay_s=0.001, max_delay_s=0.002)
    try:
        outcomes = []
        for _ in range(10):
            with pytest.raises(ProviderError) as caught:
                await runtime.executor.execute_with_retry(_run("acme"))
            outcomes.append(caught.value.details)
        assert len(provider.hits) == 10 + 3  # without a budget: 10 * (1 + 3) = 40 requests
        assert sum(bool(d.get("retry_budget_exhausted")) for d in outcomes) >= 9
        hits_before = len(provider.hits)
        with pytest.raises(ProviderError):
            await runtime.executor.execute_with_retry(_run("globex"))  # another tenant has its own budget
        assert len(provider.hits) - hits_before == 4
    finally:
        await runtime.aclose()


async def test_stream_retries_spend_the_same_budget(tmp_path: Path, provider: FakeProvider) -> None:
    provider.status = 503
    runtime = await _runtime(tmp_path, provider, budget=1)
    runtime.executor.retry_policy = RetryPolicy(base_delay_s=0.001, max_delay_s=0.002)
    try:
        for _ in range(3):
            events = [event async for event in runtime.executor.execute_stream(_run(), max_retries=2)]
            assert events[-1].type == "error"
        assert len(provider.hits) == 3 + 1
    finally:
        await runtime.aclose()


@pytest.mark.parametrize("status", [429, 500])
async def test_fallback_model_answers_when_the_primary_fails(
    tmp_path: Path, provider: FakeProvider, status: int
) -> None:
    provider.status = status
    runtime = await _runtime(tmp_path, provider, fallback_models=["offline"], max_retries=0)
    try:
        result = await runtime.executor.execute_with_retry(_run())
        assert result.status == "completed" and result.output
        assert result.attempts == 1 and len(provider.hits) == 1  # one failed call, then the fallback model
        assert "from the provider" not in result.output
        provider.status = 200
        healthy = await runtime.executor.execute_async(_run())
        assert healthy.output == "from the provider"  # the primary is still first in line
    finally:
        await runtime.aclose()
