"""Many sequential runs through the full default chain leave memory flat.

In process, through ``Runtime`` (auth with API keys, rate limit, quota, cost, logging, metrics,
dashboard series, event bus) with the callback event log on. The workload mixes what could leak:
JSON runs, consumed and abandoned streams, sessions created, continued and deleted, failures with
made-up template names (metrics labels), and auth failures. Measured every CHECK runs after
``gc.collect()``: RSS and the number of live Python objects; after the warm-up neither may grow
more than a small bound. Fast: 5,000 runs (2,000 on SQLite); ``make soak``: 100,000 on each.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import psutil
import pytest

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.runtime import Runtime
from agent_runtime.settings import RunSettings, Settings
from agent_runtime.types import AgentContext
from tests.reliability.conftest import pct, record, size

RUNS = {"memory": size(5_000, 100_000), "sqlite": size(2_000, 100_000)}
CHECK = {"memory": size(500, 10_000), "sqlite": size(200, 10_000)}
WARMUP_CHECKS = 2
MAX_RSS_GROWTH_MB = size(8, 16)
MAX_OBJECT_GROWTH = 2_000
"""Live objects may wobble (caches, freelists); a per-run leak adds at least one per run."""


async def one_run(runtime: Runtime, keys: list[str], i: int, latencies: list[float]) -> None:
    key = keys[i % len(keys)]
    kind = i % 20
    started = time.perf_counter()
    if kind == 3:  # a session: two turns, then deleted (its checkpoints must go with it)
        sid = f"soak-{i}"
        for text in ("my name is Ada", "what is my name?"):
            context = AgentContext(
                input=text, template="writer", session_id=sid, credentials=key, metadata={"create_session": True}
            )
            await runtime.executor.execute_async(context)
        principal = await runtime.keys.authenticate(key)
        await runtime.sessions.delete_session(sid, tenant=principal.tenant, user_id=principal.user)
    elif kind in (5, 15):  # a stream, read to the end
        events = [
            e
            async for e in runtime.executor.execute_stream(AgentContext(input="hi", template="writer", credentials=key))
        ]
        assert events[-1].type == "final"
    elif kind == 7:  # a stream abandoned after its first event
        stream = runtime.executor.execute_stream(AgentContext(input="hello there", template="writer", credentials=key))
        await anext(stream)
        await stream.aclose()
    elif kind == 9:  # an unknown template with a made-up name: no label, row or series may keep it
        with pytest.raises(AgentRuntimeError):
            await runtime.executor.execute_async(AgentContext(input="x", template=f"made-up-{i}", credentials=key))
    elif kind == 11:  # a bad key
        with pytest.raises(AgentRuntimeError):
            await runtime.executor.execute_async(
                AgentContext(input="x", template="writer", credentials=f"ar_{i:016x}_{'x' * 43}")
            )
    else:
        result = await runtime.executor.execute_async(
            AgentContext(
                input="what is 2 + 3 * 4?" if kind == 1 else "hello there",
                template="analyst" if kind == 1 else "writer",
                credentials=key,
            )
        )
        assert result.status == "completed"
    latencies.append(time.perf_counter() - started)


def live_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@pytest.mark.timeout(3600)
async def test_sequential_runs_leave_memory_flat(tmp_path: Path, backend: str) -> None:
    # run records are kept up to a cap per tenant: a small one, so the test sees it hold
    settings = Settings(
        state_backend=backend, data_dir=tmp_path, log_level="WARNING", runs=RunSettings(max_runs_per_tenant=100)
    )
    runtime = await Runtime.create(settings, collect_events=True)
    process = psutil.Process()
    try:
        keys = []
        for tenant in range(5):
            for user in range(4):
                key, _ = await runtime.keys.create_key(
                    f"tenant{tenant}",
                    f"user{user}",
                    ["agents:run:*", "sessions", "usage"],
                    rpm=10**9,
                    daily_tokens=10**12,
                )
                keys.append(key)
        samples: list[tuple[int, int, int]] = []
        latencies: list[float] = []
        started = time.perf_counter()
        for i in range(RUNS[backend]):
            await one_run(runtime, keys, i, latencies)
            if (i + 1) % CHECK[backend] == 0:
                samples.append((i + 1, process.memory_info().rss, live_objects()))
        wall = time.perf_counter() - started
        metric_series = runtime.metrics.render()[0].count(b"\n")
    finally:
        await runtime.aclose()

    base_rss, base_objects = samples[WARMUP_CHECKS - 1][1], samples[WARMUP_CHECKS - 1][2]
    rss_growth_mb = (max(s[1] for s in samples[WARMUP_CHECKS:]) - base_rss) / 2**20
    object_growth = max(s[2] for s in samples[WARMUP_CHECKS:]) - base_objects
    record(
        "load_sequential",
        backend=backend,
        runs=RUNS[backend],
        runs_per_s=round(RUNS[backend] / wall, 1),
        p99_ms=round(pct(latencies, 0.99) * 1000, 2),
        rss_mb=[round(s[1] / 2**20, 1) for s in samples],
        objects=[s[2] for s in samples],
        rss_growth_mb=round(rss_growth_mb, 2),
        object_growth=object_growth,
        metric_lines=metric_series,
    )
    assert rss_growth_mb < MAX_RSS_GROWTH_MB, f"RSS grew {rss_growth_mb:.1f} MB after warm-up: {samples}"
    assert object_growth < MAX_OBJECT_GROWTH, f"{object_growth} more live objects after warm-up: {samples}"
