"""One served worker holds N concurrent streaming runs over real sockets, with bounded memory.

The offline model takes ``TOKEN_MS`` per token, so every stream stays open for seconds; the test
proves that all N runs were in flight at once (every stream had its first token before any stream
got its final event), that none failed, and that the worker's RSS per stream is bounded and does
not grow from one round of N streams to the next. Fast: 200 streams; ``make soak``: 1,000.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import pytest

from tests.reliability.conftest import Worker, pct, record, size

STREAMS = size(200, 1000)
TOKEN_MS = size(400, 1500)
"""Per-token latency: a stream of the 7-token answer lasts ~7 x this, longer than opening N of them."""
MAX_KB_PER_STREAM = 300
MAX_ROUND_GROWTH_MB = 25
BODY = json.dumps({"template": "writer", "input": "hello there", "stream": True}).encode()


@dataclass
class Stream:
    status: int = 0
    first_token: float = 0.0
    done: float = 0.0
    events: list[str] = field(default_factory=list)


async def one_stream(port: int, key: str, started: float) -> Stream:
    """POST a streamed run on a fresh connection and read the chunked SSE body to its end."""
    out = Stream()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /v1/runs HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {key}\r\nContent-Length: {len(BODY)}\r\n\r\n".encode()
            + BODY
        )
        head = await reader.readuntil(b"\r\n\r\n")
        out.status = int(head.split(b" ", 2)[1])
        if out.status != 200 or b"chunked" not in head.lower():
            return out
        while True:
            chunk_size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(chunk_size + 2)
            for line in data.split(b"\n"):
                if line.startswith(b"event: "):
                    name = line[7:].strip().decode()
                    out.events.append(name)
                    if name == "token" and not out.first_token:
                        out.first_token = time.perf_counter() - started
            if chunk_size == 0:
                out.done = time.perf_counter() - started
                return out
    finally:
        writer.close()


async def stream_round(worker: Worker, n: int) -> tuple[list[Stream], int, float]:
    """N concurrent streams; the results, the worker's peak RSS meanwhile, and the wall time."""
    peak = worker.rss()
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, worker.rss())
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    results = await asyncio.gather(*(one_stream(worker.port, worker.admin_key, started) for _ in range(n)))
    wall = time.perf_counter() - started
    stop.set()
    await sampler
    return list(results), peak, wall


def check_round(results: list[Stream]) -> None:
    bad = [r for r in results if r.status != 200 or "final" not in r.events or "error" in r.events]
    assert not bad, f"{len(bad)} of {len(results)} streams failed, e.g. {bad[0]}"
    # every stream had a token before the first stream finished: all N runs were in flight together
    last_first_token = max(r.first_token for r in results)
    first_done = min(r.done for r in results)
    assert last_first_token < first_done, (
        f"streams did not overlap: last first token at {last_first_token:.2f}s, first end at {first_done:.2f}s"
    )


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@pytest.mark.timeout(600)
async def test_one_worker_holds_concurrent_streams_with_bounded_memory(worker_factory, backend: str) -> None:
    worker = worker_factory(
        {
            "AGENT_RUNTIME_STATE_BACKEND": backend,
            "AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": str(TOKEN_MS),
            "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
        }
    )
    warmup, _, _ = await stream_round(worker, 20)
    check_round(warmup)
    rss_before = worker.rss()
    first, peak1, wall1 = await stream_round(worker, STREAMS)
    check_round(first)
    rss_after_first = worker.rss()
    second, peak2, wall2 = await stream_round(worker, STREAMS)
    check_round(second)
    rss_after_second = worker.rss()

    per_stream_kb = (max(peak1, peak2) - rss_before) / STREAMS / 1024
    round_growth_mb = (rss_after_second - rss_after_first) / 2**20
    durations = [r.done for r in first + second]
    ttfts = [r.first_token for r in first + second]
    record(
        "load_streams",
        backend=backend,
        streams=STREAMS,
        token_ms=TOKEN_MS,
        errors=0,
        runs_per_s=round(2 * STREAMS / (wall1 + wall2), 1),
        p99_stream_s=round(pct(durations, 0.99), 3),
        p99_ttft_s=round(pct(ttfts, 0.99), 3),
        rss_before_mb=round(rss_before / 2**20, 1),
        rss_peak_mb=round(max(peak1, peak2) / 2**20, 1),
        rss_after_mb=round(rss_after_second / 2**20, 1),
        kb_per_stream=round(per_stream_kb, 1),
        round_growth_mb=round(round_growth_mb, 1),
    )
    assert per_stream_kb < MAX_KB_PER_STREAM, f"{per_stream_kb:.0f} KB of RSS per concurrent stream"
    assert round_growth_mb < MAX_ROUND_GROWTH_MB, f"RSS grew {round_growth_mb:.1f} MB from one round to the next"
