from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent_runtime.errors import ValidationError
from agent_runtime.monitoring.metrics import OTHER, LabelBudget, RuntimeMetrics


def scrape(metrics: RuntimeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the text exposition, keyed by (sample name, sorted labels)."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_runs_tokens_cost_after_n_runs(make_result) -> None:
    metrics = RuntimeMetrics(tenant_allowlist=["acme"])
    n = 7
    for _ in range(n):
        metrics.observe_run(
            make_result(
                input_tokens=100,
                output_tokens=20,
                cached_tokens=10,
                cost_usd=0.5,
                duration_ms=40.0,
                tools=(("calculator", "ok"),),
            ),
            tenant="acme",
        )
    metrics.observe_run(make_result(status="failed", duration_ms=10.0, error={"code": "tool_error"}), tenant="acme")
    s = scrape(metrics)
    assert value(s, "agent_runtime_runs_total", template="analyst", status="completed") == n
    assert value(s, "agent_runtime_runs_total", template="analyst", status="failed") == 1
    assert value(s, "agent_runtime_run_errors_total", template="analyst", code="tool_error") == 1
    assert value(s, "agent_runtime_run_duration_seconds_count", template="analyst") == n + 1
    assert value(s, "agent_runtime_run_duration_seconds_sum", template="analyst") == pytest.approx(n * 0.04 + 0.01)
    assert value(s, "agent_runtime_tokens_total", model="offline", kind="input") == n * 100 + 100
    assert value(s, "agent_runtime_tokens_total", model="offline", kind="output") == (n + 1) * 20
    assert value(s, "agent_runtime_tokens_total", model="offline", kind="cached") == n * 10
    assert value(s, "agent_runtime_cost_usd_total", model="offline", tenant="acme") == pytest.approx(n * 0.5)
    assert value(s, "agent_runtime_tool_calls_total", tool="calculator", status="ok") == n


def test_streamed_and_abandoned_runs_record_ttft_and_status(make_result) -> None:
    metrics = RuntimeMetrics()
    metrics.observe_run(make_result(template="writer", ttft_ms=12.0, duration_ms=80.0))
    metrics.observe_run(make_result(template="writer", status="cancelled", ttft_ms=8.0, output_tokens=2))
    s = scrape(metrics)
    assert value(s, "agent_runtime_time_to_first_token_seconds_count", template="writer") == 2
    assert value(s, "agent_runtime_time_to_first_token_seconds_sum", template="writer") == pytest.approx(0.02)
    assert value(s, "agent_runtime_runs_total", template="writer", status="cancelled") == 1
    assert value(s, "agent_runtime_tokens_total", model="offline", kind="output") == 22
    # A run without a tenant is labelled "none"; its zero cost still creates the series for the anomaly alert.
    assert value(s, "agent_runtime_cost_usd_total", model="offline", tenant="none") == 0.0


def test_tenant_label_only_for_allowlist(make_result) -> None:
    metrics = RuntimeMetrics(tenant_allowlist=["acme"])
    for tenant in ("acme", "globex", "initech"):
        metrics.observe_run(make_result(cost_usd=1.0), tenant=tenant)
    s = scrape(metrics)
    assert value(s, "agent_runtime_cost_usd_total", model="offline", tenant="acme") == 1.0
    assert value(s, "agent_runtime_cost_usd_total", model="offline", tenant=OTHER) == 2.0
    assert not any(dict(labels).get("tenant") in ("globex", "initech") for _, labels in s)


def test_label_cap_folds_excess_values_into_other(make_result) -> None:
    metrics = RuntimeMetrics(max_label_values=3)
    for i in range(10):
        metrics.observe_run(make_result(template=f"t{i}", model=f"m{i}", tools=((f"tool{i}", "ok"),)))
    s = scrape(metrics)
    templates = {dict(labels)["template"] for name, labels in s if name == "agent_runtime_runs_total"}
    models = {dict(labels)["model"] for name, labels in s if name == "agent_runtime_tokens_total"}
    tools = {dict(labels)["tool"] for name, labels in s if name == "agent_runtime_tool_calls_total"}
    assert templates == {"t0", "t1", "t2", OTHER}
    assert models == {"m0", "m1", "m2", OTHER}
    assert tools == {"tool0", "tool1", "tool2", OTHER}
    assert value(s, "agent_runtime_runs_total", template=OTHER, status="completed") == 7


def test_label_budget_rejects_long_and_empty_values() -> None:
    budget = LabelBudget(5, max_len=10)
    assert budget("x" * 11) == OTHER
    assert budget("") == OTHER
    assert budget("ok") == "ok"
    assert len(budget) == 1
    with pytest.raises(ValidationError):
        LabelBudget(-1)


def test_other_calls_show_up() -> None:
    metrics = RuntimeMetrics()
    metrics.run_started("analyst")
    metrics.run_started("analyst")
    metrics.run_finished("analyst")
    metrics.run_failed("analyst", "timeout", 1.5)
    metrics.observe_tool("search", "error")
    metrics.observe_llm("offline", 0.25)
    metrics.observe_llm("offline", 0.75)
    metrics.ratelimit_rejected("tenant")
    metrics.quota_rejected()
    metrics.quota_rejected("acme")
    metrics.set_quota_utilization("acme", "day", 0.95)
    metrics.set_active_sessions(4)
    metrics.backend_error("redis", "sessions.get")
    for kind in ("published", "published", "consumed", "dead_lettered", "lost"):
        metrics.eventbus(kind)  # type: ignore[arg-type]
    with metrics.time_middleware("auth"):
        pass
    with pytest.raises(ValidationError):
        metrics.eventbus("bogus")  # type: ignore[arg-type]
    s = scrape(metrics)
    assert value(s, "agent_runtime_active_runs", template="analyst") == 1
    assert value(s, "agent_runtime_runs_total", template="analyst", status="failed") == 1
    assert value(s, "agent_runtime_run_errors_total", template="analyst", code="timeout") == 1
    assert value(s, "agent_runtime_tool_calls_total", tool="search", status="error") == 1
    assert value(s, "agent_runtime_llm_calls_total", model="offline") == 2
    assert value(s, "agent_runtime_llm_latency_seconds_sum", model="offline") == pytest.approx(1.0)
    assert value(s, "agent_runtime_ratelimit_rejections_total", scope="tenant") == 1
    assert value(s, "agent_runtime_quota_rejections_total", tenant="none") == 1
    assert value(s, "agent_runtime_quota_rejections_total", tenant=OTHER) == 1
    assert value(s, "agent_runtime_quota_utilization_ratio", tenant=OTHER, period="day") == 0.95
    assert value(s, "agent_runtime_active_sessions") == 4
    assert value(s, "agent_runtime_backend_errors_total", backend="redis", operation="sessions.get") == 1
    assert value(s, "agent_runtime_eventbus_published_total") == 2
    assert value(s, "agent_runtime_eventbus_consumed_total") == 1
    assert value(s, "agent_runtime_eventbus_dead_lettered_total") == 1
    assert value(s, "agent_runtime_eventbus_lost_total") == 1
    assert value(s, "agent_runtime_middleware_latency_seconds_count", middleware="auth") == 1


def test_tool_calls_not_double_counted_when_reported_one_by_one(make_result) -> None:
    metrics = RuntimeMetrics()
    metrics.observe_tool("calculator", "ok")
    metrics.observe_run(make_result(tools=(("calculator", "ok"),)), count_tools=False)
    assert value(scrape(metrics), "agent_runtime_tool_calls_total", tool="calculator", status="ok") == 1


def test_instances_are_independent(make_result) -> None:
    first, second = RuntimeMetrics(), RuntimeMetrics()
    first.observe_run(make_result())
    assert value(scrape(first), "agent_runtime_runs_total", template="analyst", status="completed") == 1
    assert ("agent_runtime_runs_total", (("status", "completed"), ("template", "analyst"))) not in scrape(second)
    assert second.multiprocess_dir is None
    second.mark_process_dead(12345)  # no-op outside multiprocess mode
