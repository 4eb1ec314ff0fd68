"""The dashboard's per-minute series: buckets, rotation, percentiles, bounds and tenant separation."""

from __future__ import annotations

import math
import random

import pytest

from agent_runtime.errors import PermissionDeniedError, RateLimitError, ValidationError
from agent_runtime.monitoring.timeseries import DashboardObserver, RunSeries, latency_bucket, latency_percentiles
from agent_runtime.types import AgentContext, AgentResult, Principal, Usage


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now - now % 60  # start on a minute boundary

    def __call__(self) -> float:
        return self.now


def run(series: RunSeries, tenant: str | None = "acme", **kwargs: object) -> None:
    values: dict[str, object] = {"template": "analyst", "model": "offline", "duration_ms": 100.0}
    values.update(kwargs)
    series.record_run(tenant=tenant, **values)  # type: ignore[arg-type]


def test_counts_land_in_the_current_minute_and_empty_minutes_are_zero() -> None:
    clock = Clock()
    series = RunSeries(minutes=10, clock=clock)
    run(series, input_tokens=100, output_tokens=20, cost_usd=0.01)
    clock.now += 120
    run(series, template="writer", model="offline:mini", input_tokens=10, output_tokens=5, cost_usd=0.002)
    run(series, template="writer", input_tokens=10, output_tokens=5, cost_usd=0.002)

    snap = series.snapshot(tenant="acme", minutes=5)
    assert len(snap["minutes"]) == 5
    assert snap["minutes"][-1] == clock.now and snap["minutes"][0] == clock.now - 240
    assert snap["runs"] == [0, 0, 1, 0, 2]
    assert snap["tokens"] == {"input": [0, 0, 100, 0, 20], "output": [0, 0, 20, 0, 10]}
    assert snap["cost_usd"] == pytest.approx([0, 0, 0.01, 0, 0.004])
    assert snap["by_template"]["analyst"]["runs"] == [0, 0, 1, 0, 0]
    assert snap["by_template"]["writer"]["tokens"] == [0, 0, 0, 0, 30]
    assert snap["by_model"]["offline"]["runs"] == [0, 0, 1, 0, 1]
    assert snap["by_model"]["offline:mini"]["cost_usd"] == pytest.approx([0, 0, 0, 0, 0.002])
    assert snap["latency_ms"]["p50"] == [None, None, 100.0, None, 100.0]
    totals = snap["totals"]
    assert (totals["runs"], totals["input_tokens"], totals["output_tokens"]) == (3, 120, 30)
    assert totals["cost_usd"] == pytest.approx(0.014)


def test_failures_split_into_errors_by_code_and_rejections() -> None:
    clock = Clock()
    series = RunSeries(minutes=5, clock=clock)
    for code in ("rate_limited", "rate_limited", "quota_exceeded", "timeout", "permission_denied", "timeout"):
        series.record_failure(tenant="acme", code=code)
    snap = series.snapshot(tenant="acme", minutes=1)
    assert (snap["rate_limited"], snap["quota_rejected"], snap["errors"], snap["runs"]) == ([2], [1], [3], [0])
    assert snap["error_codes"] == {"permission_denied": [1], "timeout": [2]}
    assert snap["totals"]["p50_ms"] is None


def test_old_minutes_rotate_out_of_the_ring() -> None:
    clock = Clock()
    series = RunSeries(minutes=3, clock=clock)
    run(series)
    clock.now += 3 * 60  # the slot of minute 0 is reused by minute 3
    run(series)
    run(series)
    snap = series.snapshot(tenant="acme")
    assert snap["runs"] == [0, 0, 2]
    clock.now += 10 * 60
    assert series.snapshot(tenant="acme")["runs"] == [0, 0, 0]


def test_window_is_clamped_to_what_is_kept() -> None:
    series = RunSeries(minutes=4, clock=Clock())
    assert len(series.snapshot(tenant="x", minutes=1000)["minutes"]) == 4
    assert len(series.snapshot(tenant="x", minutes=0)["minutes"]) == 4
    with pytest.raises(ValidationError):
        RunSeries(minutes=0)


def test_tenants_are_separate_and_the_fleet_view_sums_them() -> None:
    series = RunSeries(minutes=2, clock=Clock())
    run(series, tenant="acme")
    run(series, tenant="acme")
    run(series, tenant="evil")
    run(series, tenant=None)  # a library run without a principal: worker-wide only
    series.record_failure(tenant="evil", code="rate_limited")
    assert series.snapshot(tenant="acme")["totals"]["runs"] == 2
    evil = series.snapshot(tenant="evil")
    assert (evil["totals"]["runs"], evil["totals"]["rate_limited"]) == (1, 1)
    assert series.snapshot(tenant="nobody")["totals"]["runs"] == 0
    fleet = series.snapshot(fleet=True)
    assert (fleet["view"], fleet["tenant"], fleet["totals"]["runs"], fleet["totals"]["rate_limited"]) == (
        "fleet",
        None,
        4,
        1,
    )


def test_memory_is_bounded_in_names_and_tenants() -> None:
    series = RunSeries(minutes=2, max_keys=3, max_tenants=2, clock=Clock())
    for i in range(10):
        run(series, template=f"t{i}", model=f"m{i}")
        series.record_failure(tenant="acme", code=f"code{i}")
    snap = series.snapshot(tenant="acme")
    assert sorted(snap["by_template"]) == ["other", "t0", "t1", "t2"]
    assert snap["by_template"]["other"]["runs"] == [0, 7]
    assert sorted(snap["by_model"]) == ["m0", "m1", "m2", "other"]
    assert len(snap["error_codes"]) == 4
    run(series, tenant="b")
    run(series, tenant="c")  # acme is the least recently active: dropped
    assert series.tenants() == ["b", "c"]
    assert series.snapshot(tenant="acme")["totals"]["runs"] == 0


def test_percentiles_are_within_the_bucket_resolution() -> None:
    rng = random.Random(7)
    samples = [rng.lognormvariate(math.log(200), 0.8) for _ in range(5000)]
    series = RunSeries(minutes=1, clock=Clock())
    for value in samples:
        run(series, duration_ms=value)
    totals = series.snapshot(tenant="acme")["totals"]
    ordered = sorted(samples)
    for key, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        exact = ordered[math.ceil(q * len(ordered)) - 1]
        assert totals[key] == pytest.approx(exact, rel=0.05), key


def test_percentiles_of_one_sample_are_exact_and_of_nothing_are_none() -> None:
    assert latency_percentiles({}, (0.5,)) == [None]
    histogram = {latency_bucket(42.0): 1}
    assert latency_percentiles(histogram, (0.5, 0.99), low=42.0, high=42.0) == [42.0, 42.0]
    assert latency_bucket(0.0) == latency_bucket(0.001)  # tiny and zero durations share the floor bucket


def test_observer_feeds_the_series_from_executor_notifications() -> None:
    series = RunSeries(minutes=1, clock=Clock())
    observer = DashboardObserver(series)
    principal = Principal(tenant="acme", user="u", scopes=frozenset({"agents:run:*"}))
    context = AgentContext(input="hi", template="writer", principal=principal)
    result = AgentResult(
        run_id=context.run_id,
        template="writer",
        model="offline",
        output="hello",
        usage=Usage(input_tokens=7, output_tokens=3, total_tokens=10, cost_usd=0.5),
        duration_ms=12.0,
    )
    observer.run_started(context)
    observer.run_finished(context, result)
    observer.run_finished(context, result.model_copy(update={"status": "cancelled", "duration_ms": 9000.0}))
    observer.run_failed(context, RateLimitError("slow down"), 0.001)
    observer.run_failed(context, PermissionDeniedError("no"), 0.001)
    totals = series.snapshot(tenant="acme")["totals"]
    assert (totals["runs"], totals["input_tokens"], totals["rate_limited"], totals["errors"]) == (2, 14, 1, 1)
    assert totals["cost_usd"] == pytest.approx(1.0)
    assert totals["p99_ms"] == 12.0  # the abandoned stream's duration is not a latency sample
