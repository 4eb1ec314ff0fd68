"""Agent Protocol routes side by side: agent-runtime against LangGraph's own server, in one run.

Both servers serve the same agent (our offline model, the `writer` prompt) and are driven through the
same Agent Protocol paths by the same raw keep-alive HTTP/1.1 client (see ``bench_http.Connection``):

- ``POST /runs/wait`` (stateless) at concurrency 16 and 64;
- ``POST /threads`` then ``POST /threads/{id}/runs/wait`` (a run on a new thread) at 16 and 64;
- ``POST /runs/stream`` with ``stream_mode=messages-tuple``: time to the first token at 16;
- background runs: ``POST /threads/{id}/runs`` then ``GET .../join`` (create + wait) at 16 and 64,
  and, at concurrency 1, the time until a created run leaves ``pending`` (GET polled every 2 ms:
  an upper bound of enqueue-to-start).

Rounds interleave the two servers (agent-runtime, then the peer, ``--rounds`` times); the report gives
the median of the rounds and their min-max spread, and the ratio against the peer of the same round.

    .venv/bin/python benchmarks/bench_agent_protocol.py --peer /path/to/venv/bin/langgraph [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_http import ROOT, Connection, Target, pct, start_peer, start_server

INPUT = {"messages": [{"role": "user", "content": "hello there"}]}
FIRST_TOKEN = re.compile(rb'event: messages[^\n]*\r?\ndata: [^\n]*"content": ?"[^"]')


@dataclass
class Server:
    name: str
    port: int
    headers: bytes
    assistant: str

    def target(self) -> Target:
        body: dict[str, object] = {"assistant_id": self.assistant, "input": INPUT}
        return Target(self.port, self.headers, "/runs/wait", body, "/runs/stream", body, FIRST_TOKEN)


@dataclass
class Sample:
    rate: float
    p50: float
    p99: float


@dataclass
class Results:
    rows: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)

    def add(self, scenario: str, server: str, sample: Sample) -> None:
        self.rows.setdefault((scenario, server), []).append(sample)


Step = Callable[[Connection, Server], Awaitable[float]]


async def stateless(conn: Connection, server: Server) -> float:
    started = time.perf_counter()
    await conn.request("POST", "/runs/wait", {"assistant_id": server.assistant, "input": INPUT})
    return (time.perf_counter() - started) * 1000


async def _new_thread(conn: Connection) -> str:
    _, body = await conn.request("POST", "/threads", {})
    return str(json.loads(body)["thread_id"])


async def on_thread(conn: Connection, server: Server) -> float:
    started = time.perf_counter()
    thread = await _new_thread(conn)
    await conn.request("POST", f"/threads/{thread}/runs/wait", {"assistant_id": server.assistant, "input": INPUT})
    return (time.perf_counter() - started) * 1000


async def background(conn: Connection, server: Server) -> float:
    thread = await _new_thread(conn)
    started = time.perf_counter()
    _, body = await conn.request("POST", f"/threads/{thread}/runs", {"assistant_id": server.assistant, "input": INPUT})
    run = json.loads(body)["run_id"]
    await conn.request("GET", f"/threads/{thread}/runs/{run}/join")
    return (time.perf_counter() - started) * 1000


async def first_token(conn: Connection, server: Server) -> float:
    body = {"assistant_id": server.assistant, "input": INPUT, "stream_mode": "messages-tuple"}
    seen, _ = await conn.request("POST", "/runs/stream", body, FIRST_TOKEN)
    return seen


async def leaves_pending(conn: Connection, server: Server) -> float:
    thread = await _new_thread(conn)
    started = time.perf_counter()
    _, body = await conn.request("POST", f"/threads/{thread}/runs", {"assistant_id": server.assistant, "input": INPUT})
    run = json.loads(body)["run_id"]
    while True:
        _, raw = await conn.request("GET", f"/threads/{thread}/runs/{run}")
        if json.loads(raw)["status"] != "pending":
            return (time.perf_counter() - started) * 1000
        await asyncio.sleep(0.002)


async def drive(server: Server, step: Step, concurrency: int, total: int) -> Sample:
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        async with Connection(server.target()) as conn:
            while remaining > 0:
                remaining -= 1
                latencies.append(await step(conn, server))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Sample(total / (time.perf_counter() - started), pct(latencies, 0.5), pct(latencies, 0.99))


SCENARIOS: list[tuple[str, Step, int]] = [
    ("runs/wait stateless", stateless, 16),
    ("runs/wait stateless", stateless, 64),
    ("thread + runs/wait", on_thread, 16),
    ("thread + runs/wait", on_thread, 64),
    ("background create + join", background, 16),
    ("background create + join", background, 64),
    ("runs/stream TTFT", first_token, 16),
    ("run leaves pending", leaves_pending, 1),
]


async def one_round(servers: list[Server], results: Results, requests: int) -> None:
    for server in servers:
        await drive(server, stateless, 16, 64)  # warm up: graph compiled, caches hot
        for name, step, concurrency in SCENARIOS:
            total = 40 if concurrency == 1 else requests
            results.add(f"{name} c={concurrency}", server.name, await drive(server, step, concurrency, total))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def report(results: Results, args: argparse.Namespace) -> None:
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]])
    print(f"Agent Protocol routes, offline model, template `writer`, {args.rounds} interleaved rounds. `{command}`\n")
    print("| scenario | server | runs/s median (min-max) | p50 ms | p99 ms | runs/s ratio to peer (min-max) |")
    print("|---|---|---|---|---|---|")
    for (scenario, server), samples in results.rows.items():
        peer = results.rows.get((scenario, "langgraph dev"), [])
        ratios = [s.rate / p.rate for s, p in zip(samples, peer, strict=False)] if peer else []
        ratio = spread(ratios) if ratios and server != "langgraph dev" else ""
        rates, p50s, p99s = [s.rate for s in samples], [s.p50 for s in samples], [s.p99 for s in samples]
        print(f"| {scenario} | {server} | {spread(rates)} | {spread(p50s)} | {spread(p99s)} | {ratio} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer", metavar="LANGGRAPH", help="`langgraph` CLI of a venv with langgraph-cli[inmem]")
    parser.add_argument("--backend", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400, help="runs per scenario and round")
    parser.add_argument("--port", type=int, default=8775)
    args = parser.parse_args()
    results = Results()
    with tempfile.TemporaryDirectory(prefix="bench-ap-") as data_dir:
        # every scenario makes new threads: lift the per-user session cap (1,000) for the benchmark's key
        lifted = {"AGENT_RUNTIME_LIMITS__MAX_SESSIONS_PER_USER": "1000000"}
        proc, key = start_server(args.backend, args.port, data_dir, lifted)
        peer = start_peer(args.peer, args.port + 1, Path(data_dir)) if args.peer else None
        servers = [Server("agent-runtime", args.port, f"x-api-key: {key}\r\n".encode(), "writer")]
        if peer is not None:
            servers.append(Server("langgraph dev", args.port + 1, b"", "agent"))
        try:
            for _ in range(args.rounds):
                await one_round(servers, results, args.requests)
        finally:
            proc.terminate()
            proc.wait(30)
            if peer is not None:
                peer.terminate()
                peer.wait(30)
    report(results, args)


if __name__ == "__main__":
    asyncio.run(main())
