"""Decisions per second: our Redis GCRA limiter vs the ``limits`` library, on the same redis-server.

Usage: ``python benchmarks/bench_limits.py [--redis-url URL] [--n 20000] [--concurrency 50]``
(without ``--redis-url`` a private redis-server is started on a free port and stopped at the end).

Every decision admits (the limit is far above the request count), so both sides do their full write
path. Scenarios: sequential with ``limits``' sync API (ours has none: it is awaited in a loop),
sequential async, and ``--concurrency`` concurrent async callers on one event loop. Prints a
markdown table with ratios (ours / theirs; above 1 means ours is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from typing import Any

from _servers import local_redis
from limits.aio import storage as aio_storage
from limits.aio import strategies as aio_strategies

from agent_runtime.limits.rate.base import Limit
from agent_runtime.limits.rate.redis import RedisRateLimiter
from agent_runtime.settings import RedisSettings
from limits import parse
from limits import storage as sync_storage
from limits import strategies as sync_strategies

BIG = 1_000_000_000
STRATEGIES = {
    "moving window": (sync_strategies.MovingWindowRateLimiter, aio_strategies.MovingWindowRateLimiter),
    "sliding window counter": (
        sync_strategies.SlidingWindowCounterRateLimiter,
        aio_strategies.SlidingWindowCounterRateLimiter,
    ),
    "fixed window": (sync_strategies.FixedWindowRateLimiter, aio_strategies.FixedWindowRateLimiter),
}


def rate(n: int, seconds: float) -> float:
    return n / seconds


def bench_sync(fn: Callable[[], Any], n: int) -> float:
    for _ in range(min(500, n)):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return rate(n, time.perf_counter() - start)


async def bench_async(fn: Callable[[], Awaitable[Any]], n: int, concurrency: int) -> float:
    for _ in range(10):  # warm up: open the pool's connections, load the scripts
        await asyncio.gather(*(fn() for _ in range(concurrency)))
    per_worker = n // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await fn()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return rate(per_worker * concurrency, time.perf_counter() - start)


async def measure(url: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    item = parse(f"{BIG}/minute")
    ours = RedisRateLimiter(url, RedisSettings(max_connections=max(64, args.concurrency)))
    limit = [Limit("{bench}:ours", BIG, 60.0)]

    async def ours_once() -> None:
        assert (await ours.acquire(limit)).allowed

    seq_sync, seq_async = "sequential (limits: sync API)", "sequential async"
    conc = f"{args.concurrency} concurrent async"
    samples: dict[str, dict[str, list[float]]] = {seq_sync: {}, seq_async: {}, conc: {}}
    contenders: list[tuple[str, Any, Any]] = []
    for name, (sync_cls, aio_cls) in STRATEGIES.items():
        sync_lim = sync_cls(sync_storage.RedisStorage(f"redis://{host_port}"))
        aio_lim = aio_cls(aio_storage.RedisStorage(f"async+redis://{host_port}", implementation="redispy"))
        contenders.append((f"limits {name}", sync_lim, aio_lim))

    # Rounds interleave the contenders so that load from elsewhere on the machine hits them alike.
    for _ in range(args.rounds):
        for scenario, callers in ((seq_sync, 1), (seq_async, 1), (conc, args.concurrency)):
            got = await bench_async(ours_once, args.n, callers)  # ours has no sync API: awaited in a loop
            samples[scenario].setdefault("agent_runtime GCRA", []).append(got)
        for label, sync_lim, aio_lim in contenders:

            async def theirs_once(lim: Any = aio_lim, key: str = label) -> None:
                assert await lim.hit(item, "async", key)

            sync_rate = bench_sync(lambda lim=sync_lim, key=label: lim.hit(item, "sync", key), args.n)
            samples[seq_sync].setdefault(label, []).append(sync_rate)
            samples[seq_async].setdefault(label, []).append(await bench_async(theirs_once, args.n, 1))
            samples[conc].setdefault(label, []).append(await bench_async(theirs_once, args.n, args.concurrency))
    results = {sc: {k: statistics.median(v) for k, v in row.items()} for sc, row in samples.items()}
    await ours.aclose()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the median is shown")
    args = parser.parse_args()
    with local_redis() if args.redis_url is None else nullcontext(args.redis_url) as url:
        results = await measure(url, args)

    print(
        f"Command: `{' '.join(['python', *sys.argv])}` ({args.n} decisions per cell, median of {args.rounds} "
        "interleaved rounds, one key, Redis on loopback)\n"
    )
    names = ["limits " + s for s in STRATEGIES]
    print("| scenario | agent_runtime GCRA (decisions/s) | " + " | ".join(f"{n} (ratio)" for n in names) + " |")
    print("|---" * (2 + len(names)) + "|")
    for scenario, row in results.items():
        ours_rate = row["agent_runtime GCRA"]
        cells = [f"{row[n]:,.0f} ({ours_rate / row[n]:.2f}x)" for n in names]
        print(f"| {scenario} | {ours_rate:,.0f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    asyncio.run(main())
