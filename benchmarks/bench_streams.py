"""Many SSE streams opened at once on one worker: time to first token, token events per CPU-second.

One `agent-runtime serve` (offline model at ``--token-ms`` per token, SQLite defaults) gets
``--streams`` streamed runs opened at the same moment, in rounds that alternate A (``stream_coalesce:
false``, one SSE event per token: the behaviour before coalescing) and B (the default: tokens that
queued behind a busy worker go out as one event). Per round: TTFT p50/p99, the largest gap between two
events of a stream (p99 over streams), SSE events and tokens delivered, and the server's CPU seconds
(from /proc, so the client's own work is not counted). Ratios are B against A of the same run.

    .venv/bin/python benchmarks/bench_streams.py [--streams 1000] [--rounds 3] [--token-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from _servers import free_port

BODY = {"template": "writer", "input": "tell me a long story about the sea", "stream": True}


def start_server(port: int, data_dir: str, token_ms: float) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_RUNTIME_")}
    env |= {
        "AGENT_RUNTIME_DATA_DIR": data_dir,
        "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
        "AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": str(token_ms),
    }
    cli = Path(sys.executable).parent / "agent-runtime"
    args = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ar_"):
            key = line.strip()
            break
    else:
        raise RuntimeError("no admin key printed")
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, key
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server not ready")


async def one_stream(client: httpx.AsyncClient, body: dict[str, object], start: asyncio.Event) -> dict[str, float]:
    await start.wait()
    sent = time.perf_counter()
    first: float | None = None
    last = sent
    gap = events = tokens = 0.0
    async with client.stream("POST", "/v1/runs", json=body) as response:
        assert response.status_code == 200, response.status_code
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "token":
                now = time.perf_counter()
                first = first or now
                gap = max(gap, now - last)
                last = now
                events += 1
                tokens += json.loads(line[6:]).get("tokens", 1)
    return {"ttft": ((first or last) - sent) * 1000, "gap": gap * 1000, "events": events, "tokens": tokens}


async def round_of(url: str, key: str, streams: int, coalesce: bool, server: psutil.Process) -> dict[str, float]:
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    headers = {"Authorization": f"Bearer {key}"}
    body = BODY | {"stream_coalesce": coalesce}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300, limits=limits) as client:
        start = asyncio.Event()
        tasks = [asyncio.create_task(one_stream(client, body, start)) for _ in range(streams)]
        await asyncio.sleep(0.2)
        cpu0 = sum(server.cpu_times()[:2])
        start.set()
        results = await asyncio.gather(*tasks)
        cpu = sum(server.cpu_times()[:2]) - cpu0
    ttfts = sorted(r["ttft"] for r in results)
    gaps = sorted(r["gap"] for r in results)
    events = sum(r["events"] for r in results)
    return {
        "ttft_p50": ttfts[len(ttfts) // 2],
        "ttft_p99": ttfts[int(len(ttfts) * 0.99) - 1],
        "gap_p99": gaps[int(len(gaps) * 0.99) - 1],
        "events": events,
        "tokens": sum(r["tokens"] for r in results),
        "cpu_s": cpu,
        "tokens_per_cpu_s": sum(r["tokens"] for r in results) / cpu,
        "events_per_cpu_s": events / cpu,
    }


def spread(rows: list[dict[str, float]], name: str) -> str:
    values = [r[name] for r in rows]
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--token-ms", type=float, default=20.0)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        proc, key = start_server(port, data_dir, args.token_ms)
        try:
            server = psutil.Process(proc.pid)
            url = f"http://127.0.0.1:{port}"
            await round_of(url, key, min(50, args.streams), True, server)  # warm-up
            rows: dict[str, list[dict[str, float]]] = {"A per-token": [], "B coalesced": []}
            for _ in range(args.rounds):
                rows["A per-token"].append(await round_of(url, key, args.streams, False, server))
                rows["B coalesced"].append(await round_of(url, key, args.streams, True, server))
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"{args.streams} streams at once, offline model {args.token_ms} ms/token, {args.rounds} interleaved rounds")
    print("median (min-max) per round")
    print("| side | TTFT p50 ms | TTFT p99 ms | gap p99 ms | SSE events | tokens/CPU-s | events/CPU-s |")
    print("|---|---|---|---|---|---|---|")
    for side, side_rows in rows.items():
        cols = ["ttft_p50", "ttft_p99", "gap_p99", "events", "tokens_per_cpu_s", "events_per_cpu_s"]
        print(f"| {side} | " + " | ".join(spread(side_rows, c) for c in cols) + " |")
    ratios = [b["tokens_per_cpu_s"] / a["tokens_per_cpu_s"] for a, b in zip(rows["A per-token"], rows["B coalesced"])]
    print(f"tokens per CPU-second, B/A per round: {', '.join(f'{r:.2f}x' for r in ratios)}")


if __name__ == "__main__":
    asyncio.run(main())
