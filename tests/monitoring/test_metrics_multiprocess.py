"""Two real worker processes write to one PROMETHEUS_MULTIPROC_DIR; any process renders the fleet total."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent_runtime.monitoring.metrics import mark_process_dead

WORKER = textwrap.dedent(
    """
    import sys
    from agent_runtime.monitoring.metrics import RuntimeMetrics
    from agent_runtime.types import AgentResult, Usage

    runs, active = int(sys.argv[1]), int(sys.argv[2])
    metrics = RuntimeMetrics(tenant_allowlist=["acme"])
    for _ in range(runs):
        result = AgentResult(run_id="r", template="analyst", model="offline", output="ok", duration_ms=100.0,
                             usage=Usage(input_tokens=10, output_tokens=5, total_tokens=15, cost_usd=0.25))
        metrics.observe_run(result, tenant="acme")
    for _ in range(active):
        metrics.run_started("analyst")
    metrics.set_active_sessions(runs)
    print("ready", flush=True)
    sys.stdin.readline()
    """
)

RENDER = textwrap.dedent(
    """
    import sys
    from agent_runtime.monitoring.metrics import RuntimeMetrics

    metrics = RuntimeMetrics()
    assert metrics.multiprocess_dir is not None
    body, _ = metrics.render()
    sys.stdout.write(body.decode())
    """
)


def _env(directory: Path) -> dict[str, str]:
    return {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}


def _render(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = subprocess.run(
        [sys.executable, "-c", RENDER], env=_env(directory), capture_output=True, text=True, timeout=60, check=True
    ).stdout
    samples = {}
    for family in text_string_to_metric_families(out):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "pid"}
            key = (sample.name, tuple(sorted(labels.items())))
            samples[key] = samples.get(key, 0.0) + sample.value
    return samples


@pytest.fixture
def workers(tmp_path: Path):
    procs: list[subprocess.Popen[str]] = []

    def start(runs: int, active: int) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(runs), str(active)],
            env=_env(tmp_path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_two_workers_aggregate(tmp_path: Path, workers) -> None:
    first = workers(runs=3, active=2)
    second = workers(runs=5, active=1)
    s = _render(tmp_path)
    assert s[("agent_runtime_runs_total", (("status", "completed"), ("template", "analyst")))] == 8
    assert s[("agent_runtime_run_duration_seconds_count", (("template", "analyst"),))] == 8
    assert s[("agent_runtime_run_duration_seconds_sum", (("template", "analyst"),))] == pytest.approx(0.8)
    assert s[("agent_runtime_tokens_total", (("kind", "input"), ("model", "offline")))] == 80
    assert s[("agent_runtime_cost_usd_total", (("model", "offline"), ("tenant", "acme")))] == pytest.approx(2.0)
    # livesum: active runs of live workers add up
    assert s[("agent_runtime_active_runs", (("template", "analyst"),))] == 3
    # mostrecent: the session count is the latest observation, not a sum over workers
    assert s[("agent_runtime_active_sessions", ())] in (3, 5)

    first.kill()
    first.wait(timeout=10)
    mark_process_dead(first.pid, str(tmp_path))
    s = _render(tmp_path)
    assert s[("agent_runtime_active_runs", (("template", "analyst"),))] == 1
    # counters of a dead worker still count: what it did, it did
    assert s[("agent_runtime_runs_total", (("status", "completed"), ("template", "analyst")))] == 8
    assert second.poll() is None
