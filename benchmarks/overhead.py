"""Executor overhead: AgentExecutor (no middlewares) vs a bare ``create_agent(...).ainvoke``.

Both run the same offline model and the same calculator tool (one tool call + one answer per run),
interleaved in rounds in one process so machine noise hits both alike.

    .venv/bin/python benchmarks/overhead.py [--runs 2000] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from langchain.agents import create_agent

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.models.offline import OfflineChatModel
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.tools.calculator import calculator
from agent_runtime.types import AgentContext

QUESTION = "what is 17*23+4?"


async def _timed(fn: Callable[[], Awaitable[object]], runs: int, concurrency: int) -> float:
    """Runs per second."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            await fn()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    return runs / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()

    factory = AgentFactory()
    template = factory.get_template("analyst")
    bare = create_agent(OfflineChatModel(), tools=[calculator], system_prompt=template.system_prompt)
    executor = AgentExecutor(factory)

    async def bare_run() -> object:
        return await bare.ainvoke({"messages": [{"role": "user", "content": QUESTION}]})

    async def executor_run() -> object:
        return await executor.execute_async(AgentContext(input=QUESTION, template="analyst"))

    result = await executor_run()
    assert "395" in result.output  # type: ignore[attr-defined]
    rows = []
    for label, concurrency in (("sequential", 1), (f"{args.concurrency} concurrent", args.concurrency)):
        bare_rates, exec_rates = [], []
        for _ in range(args.rounds):
            bare_rates.append(await _timed(bare_run, args.runs // args.rounds, concurrency))
            exec_rates.append(await _timed(executor_run, args.runs // args.rounds, concurrency))
        b, e = statistics.median(bare_rates), statistics.median(exec_rates)
        rows.append((label, b, e, (b / e - 1) * 100, 1000 / b, 1000 / e))
    header = (
        "| mode | bare create_agent runs/s | AgentExecutor runs/s | executor overhead | bare ms/run | executor ms/run |"
    )
    print(header)
    print("|---|---|---|---|---|---|")
    for label, b, e, overhead, bms, ems in rows:
        print(f"| {label} | {b:.0f} | {e:.0f} | {overhead:+.1f}% | {bms:.3f} | {ems:.3f} |")


if __name__ == "__main__":
    asyncio.run(main())
