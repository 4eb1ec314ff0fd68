"""Cost of monitoring on the hot path: RuntimeMetrics.observe_run + CostTracker.record (memory ledger).

Run:  .venv/bin/python benchmarks/bench_monitoring.py [--runs N] [--baseline-ms 2.0]

Prints a markdown table: nanoseconds per run for each part and their share of an offline run
(``--baseline-ms``, ~2 ms with InMemorySaver per issue 2). Target: under 2%. The multiprocess row
re-runs the metrics part in a child process with PROMETHEUS_MULTIPROC_DIR set (mmap-backed values).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time

from agent_runtime.monitoring.cost_tracker import CostTracker
from agent_runtime.monitoring.metrics import RuntimeMetrics, multiprocess_enabled
from agent_runtime.monitoring.pricing import PriceTable
from agent_runtime.monitoring.usage import MemoryUsageStore
from agent_runtime.types import AgentResult, Principal, ToolCallRecord, Usage

PRINCIPAL = Principal(tenant="acme", user="alice")


def make_result() -> AgentResult:
    return AgentResult(
        run_id="run_bench",
        template="analyst",
        model="offline",
        output="395",
        usage=Usage(input_tokens=120, output_tokens=24, total_tokens=144, cached_tokens=0),
        tool_calls=[ToolCallRecord(id="c1", name="calculator", args={"expression": "17*23+4"}, output="395")],
        duration_ms=2.1,
        time_to_first_token_ms=0.8,
    )


def bench_metrics(runs: int) -> float:
    metrics = RuntimeMetrics(tenant_allowlist=["acme"])
    result = make_result()
    for _ in range(1000):
        metrics.observe_run(result, "acme")
    start = time.perf_counter_ns()
    for _ in range(runs):
        metrics.run_started("analyst")
        metrics.observe_run(result, "acme")
        metrics.run_finished("analyst")
    return (time.perf_counter_ns() - start) / runs


async def bench_cost(runs: int) -> float:
    tracker = CostTracker(PriceTable(), MemoryUsageStore())
    result = make_result()
    for _ in range(1000):
        await tracker.record(result, PRINCIPAL)
    start = time.perf_counter_ns()
    for _ in range(runs):
        await tracker.record(result, PRINCIPAL)
    return (time.perf_counter_ns() - start) / runs


async def bench_both(runs: int) -> float:
    metrics = RuntimeMetrics(tenant_allowlist=["acme"])
    tracker = CostTracker(PriceTable(), MemoryUsageStore())
    result = make_result()
    start = time.perf_counter_ns()
    for _ in range(runs):
        metrics.run_started("analyst")
        with metrics.time_middleware("cost"):
            await tracker.record(result, PRINCIPAL)
        metrics.observe_run(result, "acme")
        metrics.run_finished("analyst")
    return (time.perf_counter_ns() - start) / runs


def bench_multiprocess(runs: int) -> float:
    with tempfile.TemporaryDirectory(prefix="ar-bench-prom-") as directory:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
        out = subprocess.run(
            [sys.executable, __file__, "--runs", str(runs), "--child"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--baseline-ms", type=float, default=2.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        assert multiprocess_enabled()
        print(bench_metrics(args.runs))
        return

    rows = [
        ("metrics: run_started + observe_run + run_finished", bench_metrics(args.runs)),
        ("cost: CostTracker.record (memory ledger)", asyncio.run(bench_cost(args.runs))),
        ("both, with time_middleware (per run)", asyncio.run(bench_both(args.runs))),
        ("metrics, multiprocess mode (mmap)", bench_multiprocess(args.runs)),
    ]
    baseline_ns = args.baseline_ms * 1e6
    print(f"`.venv/bin/python benchmarks/bench_monitoring.py --runs {args.runs} --baseline-ms {args.baseline_ms}`")
    print(f"(Python {sys.version.split()[0]}, {args.runs:,} runs each, baseline offline run {args.baseline_ms} ms)\n")
    print("| what | µs per run | share of an offline run |")
    print("|---|---:|---:|")
    for name, ns in rows:
        print(f"| {name} | {ns / 1000:.2f} | {100 * ns / baseline_ns:.2f}% |")


if __name__ == "__main__":
    main()
