"""A model missing from the price table is never silently $0: each run on it is counted and logged."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal
from tests.monitoring.test_metrics import scrape
from tests.server.conftest import Keys, LiveServer

PRINCIPAL = Principal(tenant="b", user="relay", scopes=frozenset({"agents:run:*"}))


def test_runs_on_an_unpriced_model_are_counted_and_warned(
    live: LiveServer, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Runtime B runs a template on runtime A through `openai-compatible:` (a model with no price)."""
    monkeypatch.setenv("OPENAI_API_KEY", keys.alice)
    # a base URL of its own: langchain-openai caches one async HTTP client per base URL, bound to the event
    # loop that made it, and test_openai_clients relays to the same server from another asyncio.run
    (tmp_path / "relay.yaml").write_text(f"name: relay\nmodel: openai-compatible:writer@{live.url}/v1/\n")

    async def run() -> tuple[dict[str, float], float]:
        runtime = await Runtime.create(Settings(state_backend="memory", templates_dir=tmp_path, data_dir=tmp_path))
        try:
            for template in ("relay", "relay", "writer"):  # writer runs on the (priced) offline model
                context = AgentContext(input="a haiku about rain", template=template, principal=PRINCIPAL)
                result = await runtime.executor.execute_async(context)
                assert result.usage.total_tokens > 0
            samples = scrape(runtime.metrics)
            unpriced = {
                dict(labels)["model"]: count
                for (name, labels), count in samples.items()
                if name == "agent_runtime_unpriced_runs_total"
            }
            return unpriced, result.usage.cost_usd
        finally:
            await runtime.aclose()

    with caplog.at_level(logging.WARNING, logger="agent_runtime.monitoring"):
        unpriced, offline_cost = asyncio.run(run())
    assert list(unpriced.values()) == [2.0] and next(iter(unpriced)).startswith("openai-compatible:writer@")
    assert offline_cost > 0  # the priced run is not counted
    warnings = [r for r in caplog.records if "has no price" in r.getMessage()]
    assert len(warnings) == 1 and "AGENT_RUNTIME_PRICE_FILE" in warnings[0].getMessage()
