"""Turn cost along one session (issue 14 item 3): latency and CPU of turn 2, 50 and 200, per backend,
with the checkpoint history bounded (the default, 20) and unbounded (what LangGraph's savers do).

The full default executor chain in process (no HTTP), offline model, one session, sequential turns.
Each figure is the median over a few turns around the named one (turns 2-6, 46-55, ...), and the
ratio is against turn 2 of the same run; the target is <= 1.5x up to the history cap. Each turn
reads and writes the whole conversation (LangGraph checkpoints hold the full state), so its cost
grows until ``LIMITS__MAX_HISTORY_MESSAGES`` (200, reached at turn 100) caps the conversation.

    .venv/bin/python benchmarks/bench_turns.py [--turns 400] [--backends memory,sqlite,redis]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from _servers import local_redis

from agent_runtime.runtime import Runtime
from agent_runtime.settings import SessionSettings, Settings
from agent_runtime.types import AgentContext

TEMPLATE, INPUT = "writer", "hello there"
POINTS = {
    "turn 2": range(2, 7),
    "turn 50": range(46, 56),
    "turn 100": range(96, 106),
    "turn 200": range(191, 201),
    "turn 400": range(391, 401),
}


async def turn_costs(backend: str, redis_url: str, history: int | None, turns: int) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) of each turn, index 0 = turn 1."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            state_backend=backend,
            data_dir=Path(data_dir),
            redis_url=redis_url,
            sessions=SessionSettings(checkpoint_history=history),
        )
        runtime = await Runtime.create(settings)
        try:
            key, _ = await runtime.keys.create_key("bench", "bench", ["agents:run:*"])
            principal = await runtime.keys.authenticate(key)
            out: list[tuple[float, float]] = []
            for _ in range(turns):
                context = AgentContext(
                    input=INPUT,
                    template=TEMPLATE,
                    principal=principal,
                    session_id="bench-session",
                    metadata={"create_session": True},
                )
                wall, cpu = time.perf_counter(), time.process_time()
                await runtime.executor.execute_with_retry(context)
                out.append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
            return out
        finally:
            await runtime.aclose()


def report(backend: str, history: int | None, costs: list[tuple[float, float]]) -> None:
    row = [f"{backend:7}", f"{'all' if history is None else history:>7}"]
    base_wall = base_cpu = 0.0
    for label, turns in POINTS.items():
        picked = [costs[t - 1] for t in turns if t <= len(costs)]
        if not picked:
            continue
        wall = statistics.median(c[0] for c in picked)
        cpu = statistics.median(c[1] for c in picked)
        if label == "turn 2":
            base_wall, base_cpu = wall, cpu
        row.append(f"{label}: {wall:6.2f} ms ({wall / base_wall:4.2f}x) cpu {cpu:6.2f} ms ({cpu / base_cpu:4.2f}x)")
    print(" | ".join(row), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--backends", default="memory,sqlite,redis")
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    backends = args.backends.split(",")
    needs_redis = "redis" in backends and not args.redis_url
    with local_redis() if needs_redis else nullcontext(args.redis_url or "redis://127.0.0.1:1/0") as url:
        print(f"backend | history | {args.turns} sequential turns in one session, default executor chain")
        for backend in backends:
            for history in (20, None):
                report(backend, history, await turn_costs(backend, url, history, args.turns))


if __name__ == "__main__":
    asyncio.run(main())
