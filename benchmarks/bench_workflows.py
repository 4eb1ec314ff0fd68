"""Workflow orchestration overhead: ``research_report`` (searcher -> analyst -> writer) vs its three
agents called back to back by hand.

Like with like: both sides run the same cached compiled agents, the same offline model, the same input
mappings (each step gets the previous step's output, rendered with the workflow's own ``render_input``),
and so the same model and tool calls; the setup checks that the outputs and the call counts match.

Each measured run times every variant once, in an order that rotates run by run, so machine noise hits
all alike; a round's figure per variant is its median run, and the overhead is the median over rounds
of the per-round ratio to "agents by hand". Variants, from the baseline up:

- agents by hand: ``agent.ainvoke`` three times (no runtime at all);
- one-node StateGraph: a LangGraph graph of a single node that calls the three agents in turn, the
  least any outer LangGraph graph can cost (one loop, one superstep; no per-step checkpoint, no live
  step of its own): LangGraph's floor for running agents inside a graph;
- bare StateGraph: the three agents as the nodes of a minimal LangGraph ``StateGraph`` (input mapping
  only), i.e. what any LangGraph workflow pays for its outer graph: one superstep per step plus the
  nested graph invocation;
- workflow graph: the compiled ``research_report`` graph called directly (adds per-step usage records,
  timeouts, message ids);
- workflow via executor: ``AgentExecutor.execute_async`` (no middlewares), the headline figure;
- executor x3 by hand: three ``execute_async`` runs, one per template (what a runtime user would do
  without workflows, with per-template usage too); the last column of the first table compares with it.

With the instant offline model most of the overhead is LangGraph's outer graph (compare "one-node" and
"bare StateGraph"), a fixed cost per step that any model latency dwarfs (hence the 0.1 ms/token row).

    .venv/bin/python benchmarks/bench_workflows.py [--runs 100] [--latency-runs 10] [--rounds 3]
        [--token-latency-ms 0 0.1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext
from agent_runtime.workflows import RESEARCH_REPORT
from agent_runtime.workflows.spec import render_input

TOPIC = "redis connection pool"
STEPS = RESEARCH_REPORT.steps
Variant = Callable[[], Awaitable[Any]]


class _BareState(TypedDict, total=False):
    outputs: dict[str, str]


def _counts(messages: list[BaseMessage]) -> tuple[int, int]:
    """(model calls, tool calls) of a run's messages."""
    return sum(isinstance(m, AIMessage) for m in messages), sum(isinstance(m, ToolMessage) for m in messages)


def _bare_graph(agents: list[Any]) -> Any:
    """The least any LangGraph workflow of these agents does: one node per agent, input mapping only."""
    graph: StateGraph[_BareState] = StateGraph(_BareState)
    for step, agent in zip(STEPS, agents, strict=True):

        async def node(state: _BareState, config: RunnableConfig, step: Any = step, agent: Any = agent) -> _BareState:
            outputs = state.get("outputs") or {}
            text = render_input(step.input or "{input}", TOPIC, outputs)
            final = await agent.ainvoke({"messages": [HumanMessage(text)]}, config)
            return {"outputs": {**outputs, step.name: str(final["messages"][-1].text)}}

        graph.add_node(step.name, node)
    names = [s.name for s in STEPS]
    for source, target in zip([START, *names], [*names, END], strict=True):
        graph.add_edge(source, target)
    return graph.compile()


def _one_node_graph(agents: list[Any]) -> Any:
    """LangGraph's floor: one node that runs every agent, so one loop and one superstep in all."""
    graph: StateGraph[_BareState] = StateGraph(_BareState)

    async def node(state: _BareState, config: RunnableConfig) -> _BareState:
        outputs: dict[str, str] = {}
        for step, agent in zip(STEPS, agents, strict=True):
            text = render_input(step.input or "{input}", TOPIC, outputs)
            final = await agent.ainvoke({"messages": [HumanMessage(text)]}, config)
            outputs[step.name] = str(final["messages"][-1].text)
        return {"outputs": outputs}

    graph.add_node("steps", node)
    graph.add_edge(START, "steps")
    graph.add_edge("steps", END)
    return graph.compile()


def variants(token_latency_ms: float) -> tuple[dict[str, Variant], Variant]:
    """The variants by name, and a check that they do the same work."""
    factory = AgentFactory(Settings(offline_token_latency_ms=token_latency_ms))
    executor = AgentExecutor(factory)
    agents = [factory.create_from_template(s.template) for s in STEPS]
    workflow = factory.create_from_template(RESEARCH_REPORT.name)
    bare = _bare_graph(agents)
    one_node = _one_node_graph(agents)

    async def by_hand() -> tuple[dict[str, str], list[BaseMessage]]:
        outputs: dict[str, str] = {}
        produced: list[BaseMessage] = []
        for step, agent in zip(STEPS, agents, strict=True):
            state = await agent.ainvoke(
                {"messages": [HumanMessage(render_input(step.input or "{input}", TOPIC, outputs))]}
            )
            outputs[step.name] = str(state["messages"][-1].text)
            produced += state["messages"][1:]
        return outputs, produced

    async def executor_x3() -> list[Any]:
        outputs: dict[str, str] = {}
        results = []
        for step in STEPS:
            text = render_input(step.input or "{input}", TOPIC, outputs)
            result = await executor.execute_async(AgentContext(input=text, template=step.template))
            outputs[step.name] = result.output
            results.append(result)
        return results

    async def via_executor() -> Any:
        return await executor.execute_async(AgentContext(input=TOPIC, template=RESEARCH_REPORT.name))

    async def check() -> None:
        outputs, produced = await by_hand()
        direct = await workflow.ainvoke({"messages": [HumanMessage(TOPIC)]})
        result = await via_executor()
        bare_state = await bare.ainvoke({})
        assert (await one_node.ainvoke({}))["outputs"] == bare_state["outputs"]
        thrice = await executor_x3()
        final = outputs[STEPS[-1].name]
        assert result.output == final == direct["outputs"][STEPS[-1].name] == thrice[-1].output
        assert bare_state["outputs"] == outputs == direct["outputs"]
        assert _counts(direct["messages"][1:]) == _counts(produced), "the workflow made other model/tool calls"
        assert len(result.metadata["steps"]) == len(STEPS)

    return {
        "agents by hand": by_hand,
        "one-node StateGraph": lambda: one_node.ainvoke({}),
        "bare StateGraph": lambda: bare.ainvoke({}),
        "workflow graph": lambda: workflow.ainvoke({"messages": [HumanMessage(TOPIC)]}),
        "workflow via executor": via_executor,
        "executor x3 by hand": executor_x3,
    }, check


Rounds = dict[str, list[float]]
"""Per variant: its median ms per run in each round."""


async def measure(token_latency_ms: float, runs: int, rounds: int) -> Rounds:
    named, check = variants(token_latency_ms)
    await check()
    names = list(named)
    for name in names:  # warm up
        await named[name]()
    per_round: Rounds = {name: [] for name in names}
    for _ in range(rounds):
        times: dict[str, list[float]] = {name: [] for name in names}
        for run in range(runs):
            shift = run % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                await named[name]()
                times[name].append((time.perf_counter() - started) * 1000)
        for name in names:
            per_round[name].append(statistics.median(times[name]))
    return per_round


def _ms(rounds: Rounds, name: str) -> float:
    return statistics.median(rounds[name])


def _overhead(rounds: Rounds, name: str, base: str = "agents by hand") -> float:
    """Median over rounds of the per-round ratio, minus one."""
    return statistics.median(a / b for a, b in zip(rounds[name], rounds[base], strict=True)) - 1


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100, help="runs per round with the instant model")
    parser.add_argument("--latency-runs", type=int, default=10, help="runs per round with a token latency")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--token-latency-ms", type=float, nargs="+", default=[0.0, 0.1, 2.0])
    args = parser.parse_args()
    steps = len(STEPS)
    print(f"`{' '.join(['python', *sys.argv])}`\n")
    results = {}
    for latency in args.token_latency_ms:
        results[latency] = await measure(latency, args.latency_runs if latency else args.runs, args.rounds)
    print(
        "| offline token latency | 3 agents by hand (ms/run) | workflow via executor (ms/run) "
        "| overhead per step (ms) | overhead | overhead vs 3 executor runs by hand |"
    )
    print("|---|---|---|---|---|---|")
    for latency, rounds in results.items():
        hand, flow = _ms(rounds, "agents by hand"), _ms(rounds, "workflow via executor")
        share = _overhead(rounds, "workflow via executor")
        vs_executor = _overhead(rounds, "workflow via executor", "executor x3 by hand")
        print(
            f"| {latency:g} ms | {hand:.2f} | {flow:.2f} | {share * hand / steps:.3f} | {share * 100:+.1f}% "
            f"| {vs_executor * 100:+.1f}% |"
        )
    names = [name for name in next(iter(results.values())) if name != "agents by hand"]
    print("\nWhere it goes: each variant vs the 3 agents by hand (overhead, and per step in ms)\n")
    print("| offline token latency | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for latency, rounds in results.items():
        hand = _ms(rounds, "agents by hand")
        cells = [f"{_overhead(rounds, n) * 100:+.1f}% ({_overhead(rounds, n) * hand / steps:.3f})" for n in names]
        print(f"| {latency:g} ms | " + " | ".join(cells) + " |")
    instant = results.get(0.0)
    if instant is not None:
        extra = _overhead(instant, "workflow via executor") * _ms(instant, "agents by hand")
        floor = _overhead(instant, "one-node StateGraph")
        print(
            f"\nWith the instant model the workflow costs {extra:.2f} ms a run more than the agents by hand, so it"
            f" stays under 10% once the three agents take over {extra * 10:.0f} ms together. LangGraph's floor"
            f" (one-node StateGraph) alone is {floor * 100:+.1f}% here."
        )


if __name__ == "__main__":
    asyncio.run(main())
