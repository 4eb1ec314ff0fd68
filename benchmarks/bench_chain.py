"""The default middleware chain (auth, rate limit, cost, logging) vs no chain, on memory and on Redis.

All three executors run the same offline analyst run (a tool call and an answer), interleaved in
rounds in one process. Redis is a private redis-server started on a free port.

    .venv/bin/python benchmarks/bench_chain.py [--runs 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

from _servers import local_redis

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext

QUESTION = "what is 17*23+4?"


async def runtime_with_key(settings: Settings) -> tuple[Runtime, str]:
    runtime = await Runtime.create(settings, with_event_bus=False)
    key, _ = await runtime.keys.create_key(
        "bench", "bench", ["agents:run:*", "sessions", "usage"], rpm=10**9, tpm=10**12
    )
    return runtime, key


async def rate(executor: AgentExecutor, key: str | None, runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        await executor.execute_async(AgentContext(input=QUESTION, template="analyst", credentials=key))
    return runs / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("agent_runtime").setLevel(logging.WARNING)  # the logging middleware formats, not prints
    with local_redis() as redis_url:
        memory_rt, memory_key = await runtime_with_key(Settings(state_backend="memory"))
        redis_rt, redis_key = await runtime_with_key(Settings(state_backend="redis", redis_url=redis_url))
        bare = AgentExecutor(AgentFactory(Settings(state_backend="memory")))
        cases = [("no chain", bare, None), ("default chain, memory", memory_rt.executor, memory_key),
                 ("default chain, redis", redis_rt.executor, redis_key)]  # fmt: skip
        for _, executor, key in cases:
            await rate(executor, key, 50)
        rates: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        per_round = args.runs // args.rounds
        for _ in range(args.rounds):
            for name, executor, key in cases:
                rates[name].append(await rate(executor, key, per_round))
        base = statistics.median(rates["no chain"])
        print("| executor | runs/s | ms/run | added by the chain |")
        print("|---|---|---|---|")
        for name, _, _ in cases:
            r = statistics.median(rates[name])
            print(f"| {name} | {r:.0f} | {1000 / r:.3f} | {(base / r - 1) * 100:+.1f}% |")
        await memory_rt.aclose()
        await redis_rt.aclose()


if __name__ == "__main__":
    asyncio.run(main())
