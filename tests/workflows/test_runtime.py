"""A workflow run through the whole runtime: API key auth, rate limit and quotas, the usage ledger, the
Prometheus metrics and the event bus, with steps answered by models of different prices."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_runtime.errors import PermissionDeniedError, QuotaExceededError, RateLimitError
from agent_runtime.event_bus.events import Event
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext
from agent_runtime.workflows import register_workflow_spec
from tests.event_bus.conftest import eventually
from tests.monitoring.test_metrics import scrape, value

PREMIUM = "offline:premium"


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({PREMIUM: {"input_per_mtok": 10.0, "output_per_mtok": 40.0}}))
    rt = await Runtime.create(Settings(state_backend="memory", data_dir=tmp_path, price_file=prices))
    rt.factory.register_template({"name": "editor", "model": PREMIUM, "system_prompt": "Polish the draft."})
    register_workflow_spec(
        rt.factory,
        {
            "name": "draft_and_edit",
            "steps": [
                {"name": "draft", "template": "writer"},
                {"name": "edit", "template": "editor", "input": "Polish: {steps.draft}"},
            ],
        },
    )
    yield rt
    await rt.aclose()


async def _run(rt: Runtime, key: str, template: str = "draft_and_edit") -> object:
    return await rt.executor.execute_async(
        AgentContext(input="a haiku about rain", template=template, credentials=f"Bearer {key}")
    )


async def test_a_workflow_is_charged_per_model_and_seen_by_metrics_and_the_bus(runtime: Runtime) -> None:
    events: list[Event] = []

    async def collect(event: Event) -> None:
        events.append(event)

    await runtime.event_bus.subscribe("test", collect, types=["run.completed"])
    key, _ = await runtime.keys.create_key("acme", "ann", ["agents:run:*"])
    result = await _run(runtime, key)
    steps = {s["step"]: s for s in result.metadata["steps"]}  # type: ignore[attr-defined]
    assert (steps["draft"]["model"], steps["edit"]["model"]) == ("offline", PREMIUM)
    premium = steps["edit"]["usage"]
    assert premium["cost_usd"] == pytest.approx((premium["input_tokens"] * 10 + premium["output_tokens"] * 40) / 1e6)
    assert result.usage.cost_usd == pytest.approx(steps["draft"]["usage"]["cost_usd"] + premium["cost_usd"])  # type: ignore[attr-defined]

    # the ledger: one row per model, under the workflow's name, costs as the steps priced them
    by_model = {row.key: row for row in await runtime.cost_tracker.report(tenant="acme", by="model")}
    assert by_model[PREMIUM].cost_usd == pytest.approx(premium["cost_usd"])
    assert by_model[PREMIUM].input_tokens == premium["input_tokens"]
    assert by_model["offline"].cost_usd == pytest.approx(steps["draft"]["usage"]["cost_usd"])
    (row,) = await runtime.cost_tracker.report(tenant="acme", by="template")
    assert (row.key, row.runs) == ("draft_and_edit", 1)
    assert row.cost_usd == pytest.approx(result.usage.cost_usd)  # type: ignore[attr-defined]

    # the metrics: the run under the workflow's name, tokens and cost under the model of each step
    samples = scrape(runtime.metrics)
    assert value(samples, "agent_runtime_runs_total", template="draft_and_edit", status="completed") == 1
    assert value(samples, "agent_runtime_tokens_total", model=PREMIUM, kind="output") == premium["output_tokens"]
    cost = value(samples, "agent_runtime_cost_usd_total", model=PREMIUM, tenant="other")
    assert cost == pytest.approx(premium["cost_usd"])

    # the bus: run.completed carries the per-step attribution
    await eventually(lambda: len(events) == 1)
    payload = events[0].payload
    assert payload["template"] == "draft_and_edit" and payload["usage"]["total_tokens"] == result.usage.total_tokens  # type: ignore[attr-defined]
    assert [(s["step"], s["template"], s["model"]) for s in payload["steps"]] == [
        ("draft", "writer", "offline"),
        ("edit", "editor", PREMIUM),
    ]
    assert "output" not in payload["steps"][0]


async def test_a_workflow_goes_through_auth_rate_limit_and_quotas(runtime: Runtime) -> None:
    scoped, _ = await runtime.keys.create_key("acme", "ann", ["agents:run:writer"])
    with pytest.raises(PermissionDeniedError):  # the key's scope names the template, not its steps
        await _run(runtime, scoped)

    limited, _ = await runtime.keys.create_key("acme", "bob", ["agents:run:*"], rpm=1)
    await _run(runtime, limited)
    with pytest.raises(RateLimitError):
        await _run(runtime, limited)

    # the quota reservation bounds the whole workflow (both steps, each reading the other's output),
    # so a budget that admits one writer run refuses the workflow before any step runs
    small, _ = await runtime.keys.create_key("acme", "cy", ["agents:run:*"], daily_tokens=3000)
    await _run(runtime, small, template="writer")
    with pytest.raises(QuotaExceededError):
        await _run(runtime, small)
    rows = await runtime.cost_tracker.report(tenant="acme", user="cy", by="template")
    assert [row.key for row in rows] == ["writer"]  # the refused workflow spent nothing


async def test_the_quota_bound_of_a_chain_grows_with_its_length_not_its_square(runtime: Runtime) -> None:
    """Each step is bounded by what its input mapping reads: the run's input, or the previous step's
    whole output, not every step's."""
    from agent_runtime.runtime import _estimate

    steps = [{"name": "s0", "template": "writer"}] + [{"name": f"s{i}", "template": "writer"} for i in range(1, 8)]
    register_workflow_spec(runtime.factory, {"name": "chain", "steps": steps})
    text = "a haiku about rain"
    bound = _estimate(AgentContext(input=text, template="chain"), runtime.factory, runtime.cost_tracker)
    first = len(text.encode()) + 64 + 1024  # reads the input, writes at most max_output_tokens
    later = 64 + 1024 + 1024  # reads the previous output (at most max_output_tokens), writes as much
    assert bound.tokens == first + 7 * later
