"""HTTP service throughput and latency: `agent-runtime serve` (one worker) driven over loopback.

Measures, with the offline model and the full default chain (auth, rate limit, cost, logging):
runs/s and p50/p99 latency of ``POST /v1/runs`` at concurrency 1, 16 and 64; streaming time to
first token (p50/p99); and, in this process, the bare ``create_agent(...).ainvoke`` latency of the
same model and prompt, so that *HTTP latency minus bare agent latency* is the runtime's own overhead
per request (HTTP parsing, auth, rate limit, quota, usage ledger, logging, JSON, and the client).

    .venv/bin/python benchmarks/bench_http.py [--requests 2000] [--backend sqlite|memory]

The client is a minimal keep-alive HTTP/1.1 client on raw sockets in this process (httpx itself adds
milliseconds per request at high concurrency); its small cost is included in every latency figure,
so the overhead reported is an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from langchain.agents import create_agent

from agent_runtime.agents.templates import DEFAULT_TEMPLATES
from agent_runtime.models.offline import OfflineChatModel
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext

TEMPLATE = "writer"
INPUT = "hello there"
ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_server(
    backend: str, port: int, data_dir: str, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_RUNTIME_")}
    env |= {
        "AGENT_RUNTIME_STATE_BACKEND": backend,
        "AGENT_RUNTIME_DATA_DIR": data_dir,
        "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    cli = Path(sys.executable).parent / "agent-runtime"
    args = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    key = ""
    while not key.startswith("ar_"):
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("server exited before printing its admin key")
        key = line.strip()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return proc, key
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not become ready")


@dataclass(frozen=True)
class Target:
    """One server under test: where a run goes, and how its stream shows the first token."""

    port: int
    headers: bytes
    run_path: str
    run_body: dict[str, object]
    stream_path: str
    stream_body: dict[str, object]
    first_token: re.Pattern[bytes]


def runtime_target(port: int, key: str) -> Target:
    body = {"template": TEMPLATE, "input": INPUT}
    return Target(
        port,
        f"Authorization: Bearer {key}\r\n".encode(),
        "/v1/runs",
        body,
        "/v1/runs",
        body | {"stream": True},
        re.compile(rb"event: token"),
    )


class Connection:
    """A minimal keep-alive HTTP/1.1 client connection.

    httpx's own per-request cost grows with concurrency (at 64 connections it alone adds tens of ms),
    which would be measured as server latency; raw sockets measure the server.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.target.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.writer is not None
        self.writer.close()

    async def post(self, path: str, body: dict[str, object], first: re.Pattern[bytes] | None = None) -> float:
        """Send one request and read the whole answer (sized or chunked); milliseconds until ``first``
        appeared in the body (or until the headers, without a pattern)."""
        seen, _ = await self.request("POST", path, body, first)
        return seen

    async def request(
        self, method: str, path: str, body: dict[str, object] | None = None, first: re.Pattern[bytes] | None = None
    ) -> tuple[float, bytes]:
        """One request on this connection: (milliseconds until ``first`` or the headers, the whole body)."""
        assert self.reader is not None and self.writer is not None
        started = time.perf_counter()
        payload = b"" if body is None else json.dumps(body).encode()
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n".encode()
            + self.target.headers
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if int(lines[0].split()[1]) not in (200, 201, 202):
            raise RuntimeError(f"{path}: {lines[0].decode()}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        seen = 0.0 if first else (time.perf_counter() - started) * 1000
        if b"content-length" in headers:
            data = await self.reader.readexactly(int(headers[b"content-length"]))
            if first is not None and first.search(data):
                seen = (time.perf_counter() - started) * 1000
            return seen, data
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            data = await self.reader.readexactly(size + 2)
            parts.append(data[:-2])
            if not seen and first is not None and first.search(data):
                seen = (time.perf_counter() - started) * 1000
            if size == 0:
                return seen, b"".join(parts)


async def load(target: Target, concurrency: int, total: int) -> tuple[float, list[float]]:
    """Runs/s and per-request latencies (ms) of ``total`` runs, ``concurrency`` at a time."""
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        async with Connection(target) as conn:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                await conn.post(target.run_path, target.run_body)
                latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), latencies


async def ttft(target: Target, concurrency: int, total: int) -> list[float]:
    """Milliseconds from sending a streamed run to reading its first token."""
    firsts: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        async with Connection(target) as conn:
            while remaining > 0:
                remaining -= 1
                firsts.append(await conn.post(target.stream_path, target.stream_body, target.first_token))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return firsts


async def bare_latencies(runs: int) -> list[float]:
    """The same model and prompt through a bare LangChain agent, in process, sequentially."""
    writer = next(t for t in DEFAULT_TEMPLATES if t.name == TEMPLATE)
    agent = create_agent(OfflineChatModel(), tools=[], system_prompt=writer.system_prompt)
    out: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        await agent.ainvoke({"messages": [{"role": "user", "content": INPUT}]})
        out.append((time.perf_counter() - started) * 1000)
    return out


async def executor_latencies(backend: str, data_dir: str, runs: int) -> list[float]:
    """The full default chain in process, without HTTP (principal resolved once, as the server does)."""
    runtime = await Runtime.create(Settings(state_backend=backend, data_dir=Path(data_dir)))
    try:
        key, _ = await runtime.keys.create_key("bench", "bench", ["agents:run:*", "sessions", "usage"])
        principal = await runtime.keys.authenticate(key)
        out: list[float] = []
        for index in range(runs + 50):
            started = time.perf_counter()
            await runtime.executor.execute_with_retry(AgentContext(input=INPUT, template=TEMPLATE, principal=principal))
            if index >= 50:
                out.append((time.perf_counter() - started) * 1000)
        return out
    finally:
        await runtime.aclose()


PEER_AGENT = """
from langchain.agents import create_agent
from agent_runtime.agents.templates import DEFAULT_TEMPLATES
from agent_runtime.models.offline import OfflineChatModel

writer = next(t for t in DEFAULT_TEMPLATES if t.name == "writer")
graph = create_agent(OfflineChatModel(), tools=[], system_prompt=writer.system_prompt)
"""


def start_peer(langgraph: str, port: int, app_dir: Path) -> subprocess.Popen[bytes]:
    """LangGraph's own server (``langgraph dev``, in-memory runtime, stock settings) serving the same
    agent: our offline model and the writer prompt, imported from this source tree."""
    (app_dir / "agent.py").write_text(PEER_AGENT)
    (app_dir / "langgraph.json").write_text(
        json.dumps({"dependencies": ["."], "graphs": {"agent": "./agent.py:graph"}})
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    args = [langgraph, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--config", str(app_dir / "langgraph.json")]
    proc = subprocess.Popen(args, cwd=app_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ok", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("langgraph dev did not become ready")


def peer_target(port: int) -> Target:
    body: dict[str, object] = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": INPUT}]}}
    return Target(
        port,
        b"",
        "/runs/wait",
        body,
        "/runs/stream",
        body | {"stream_mode": "messages"},
        re.compile(rb'event: messages/partial\r?\ndata: \[\{"content":"[^"]'),
    )


async def measure(target: Target, requests: int, slow_start: bool) -> dict[str, object]:
    """runs/s, p50, p99 at concurrency 1/16/64 and streaming TTFT at 1 and 16."""
    await load(target, 16, 32 if slow_start else 300)  # warm up: agent compiled, caches hot
    rows = []
    for concurrency in (1, 16, 64):
        total = (20 if slow_start else max(requests // 2, 200)) if concurrency == 1 else requests
        rate, latencies = await load(target, concurrency, total)
        rows.append((concurrency, rate, pct(latencies, 0.5), pct(latencies, 0.99)))
    ttft_1 = await ttft(target, 1, 20 if slow_start else 500)
    ttft_16 = await ttft(target, 16, requests // 2)
    return {"rows": rows, "ttft": [(1, ttft_1), (16, ttft_16)]}


def quota_key(backend: str, data_dir: str) -> str:
    """A key with daily token and monthly spend quotas (high enough never to refuse), made by the CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_RUNTIME_")}
    env |= {"AGENT_RUNTIME_STATE_BACKEND": backend, "AGENT_RUNTIME_DATA_DIR": data_dir}
    cli = Path(sys.executable).parent / "agent-runtime"
    args = ["keys", "create", "--tenant", "bench", "--user", "q", "--scope", "agents:run:*"]
    args += ["--daily-tokens", "1000000000", "--monthly-usd", "1000000"]
    done = subprocess.run([str(cli), *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


async def measure_load(target: Target, requests: int) -> dict[str, object]:
    await load(target, 16, 300)
    rows = []
    for concurrency in (16, 64):
        rate, latencies = await load(target, concurrency, requests)
        rows.append((concurrency, rate, pct(latencies, 0.5), pct(latencies, 0.99)))
    return {"rows": rows, "ttft": []}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="runs per concurrency level")
    parser.add_argument("--backend", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--peer", metavar="LANGGRAPH", help="`langgraph` CLI of a venv with langgraph-cli[inmem]")
    args = parser.parse_args()

    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-http-") as data_dir:
        proc, key = start_server(args.backend, args.port, data_dir)
        try:
            results["agent-runtime"] = await measure(runtime_target(args.port, key), args.requests, False)
            # the same, with a key that has token and spend quotas: every run reserves and settles
            limited = runtime_target(args.port, quota_key(args.backend, data_dir))
            results["agent-runtime, key with quotas"] = await measure_load(limited, args.requests)
        finally:
            proc.terminate()
            proc.wait(30)
        if args.peer:
            peer = start_peer(args.peer, args.port + 1, Path(data_dir))
            try:
                results["langgraph dev"] = await measure(peer_target(args.port + 1), args.requests // 4, True)
            finally:
                peer.terminate()
                peer.wait(30)
    bare = await bare_latencies(1000)
    with tempfile.TemporaryDirectory(prefix="bench-exec-") as data_dir:
        chain = await executor_latencies(args.backend, data_dir, 1000)
    report(args, results, bare, chain)


def report(
    args: argparse.Namespace, results: dict[str, dict[str, object]], bare: list[float], chain: list[float]
) -> None:
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]])
    print(
        f"HTTP service, 1 worker, state backend `{args.backend}`, offline model, template `{TEMPLATE}`, "
        f"full default chain; raw keep-alive HTTP/1.1 client over loopback. Command: `{command}`\n"
    )
    print("| server | concurrency | runs/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for name, result in results.items():
        for concurrency, rate, p50, p99 in result["rows"]:  # type: ignore[attr-defined]
            print(f"| {name} | {concurrency} | {rate:.0f} | {p50:.2f} | {p99:.2f} |")
    print()
    print("| server | streaming TTFT | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for name, result in results.items():
        for concurrency, firsts in result["ttft"]:  # type: ignore[attr-defined]
            print(f"| {name} | concurrency {concurrency} | {pct(firsts, 0.5):.2f} | {pct(firsts, 0.99):.2f} |")
    print()
    _, _, c1_p50, c1_p99 = results["agent-runtime"]["rows"][0]  # type: ignore[index]
    bare_p50, bare_p99 = pct(bare, 0.5), pct(bare, 0.99)
    print("| per-request overhead (concurrency 1) | p50 ms | p99 ms |")
    print("|---|---|---|")
    print(f"| bare create_agent ainvoke, in process | {bare_p50:.2f} | {bare_p99:.2f} |")
    print(f"| executor, full default chain, in process | {pct(chain, 0.5):.2f} | {pct(chain, 0.99):.2f} |")
    print(f"| HTTP POST /v1/runs | {c1_p50:.2f} | {c1_p99:.2f} |")
    print(f"| runtime overhead (HTTP - bare) | {c1_p50 - bare_p50:.2f} | {c1_p99 - bare_p99:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
