"""Workflow orchestration overhead: ``research_report`` through ``AgentExecutor`` vs its three agents
(searcher -> analyst -> writer) called back to back by hand with the same inputs.

Both sides use the same cached compiled agents and the offline model; rounds are interleaved so machine
noise hits both alike. The workflow side adds the executor (no middlewares), the StateGraph (one
superstep per step), input mapping, and per-step usage records.

    .venv/bin/python benchmarks/bench_workflows.py [--runs 100] [--rounds 3] [--token-latency-ms 0 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from langchain_core.messages import HumanMessage

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext
from agent_runtime.workflows import RESEARCH_REPORT
from agent_runtime.workflows.spec import render_input

TOPIC = "redis connection pool"


async def _per_run_ms(fn: Callable[[], Awaitable[object]], runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        await fn()
    return (time.perf_counter() - started) * 1000 / runs


async def measure(token_latency_ms: float, runs: int, rounds: int) -> tuple[float, float]:
    factory = AgentFactory(Settings(offline_token_latency_ms=token_latency_ms))
    executor = AgentExecutor(factory)
    steps = RESEARCH_REPORT.steps
    agents = [factory.create_from_template(s.template) for s in steps]

    async def by_hand() -> object:
        outputs: dict[str, str] = {}
        for step, agent in zip(steps, agents, strict=True):
            text = render_input(step.input or "{input}", TOPIC, outputs)
            state = await agent.ainvoke({"messages": [HumanMessage(text)]})
            outputs[step.name] = str(state["messages"][-1].text)
        return outputs

    async def workflow() -> object:
        return await executor.execute_async(AgentContext(input=TOPIC, template="research_report"))

    hand = await by_hand()
    result = await workflow()
    assert result.output == hand["write"]  # type: ignore[attr-defined,index]
    hand_ms: list[float] = []
    flow_ms: list[float] = []
    for _ in range(rounds):
        hand_ms.append(await _per_run_ms(by_hand, runs))
        flow_ms.append(await _per_run_ms(workflow, runs))
    return statistics.median(hand_ms), statistics.median(flow_ms)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--token-latency-ms", type=float, nargs="+", default=[0.0, 2.0])
    args = parser.parse_args()
    steps = len(RESEARCH_REPORT.steps)
    print(f"`{' '.join(['python', *sys.argv])}`\n")
    print(
        "| offline token latency | 3 agents by hand (ms/run) | workflow via executor (ms/run) "
        "| overhead per step (ms) | overhead |"
    )
    print("|---|---|---|---|---|")
    for latency in args.token_latency_ms:
        hand, flow = await measure(latency, args.runs, args.rounds)
        per_step, share = (flow - hand) / steps, (flow - hand) / hand * 100
        print(f"| {latency:g} ms | {hand:.2f} | {flow:.2f} | {per_step:.3f} | {share:+.1f}% |")


if __name__ == "__main__":
    asyncio.run(main())
