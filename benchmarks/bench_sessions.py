"""Sessions benchmark: create / save_checkpoint / resume per second on memory, SQLite and Redis.

Redis is compared with raw redis-py GET/SET round trips on the same server and client settings:
the "x raw RT" column is the time of one session operation divided by the time of one raw round
trip, and "RT/op" counts the round trips the operation really made (counted at the socket).

    .venv/bin/python benchmarks/bench_sessions.py [--n 2000] [--redis-url redis://...]

Without ``--redis-url`` a private redis-server is started on a free port and stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from _servers import local_redis
from redis.asyncio.connection import AbstractConnection

from agent_runtime._redis import make_redis
from agent_runtime.sessions import MemorySessionStore, SessionManager
from agent_runtime.sessions.base import SessionStore
from agent_runtime.sessions.redis import RedisSessionStore
from agent_runtime.sessions.sqlite import SqliteSessionStore

ROUND_TRIPS = 0
_send = AbstractConnection.send_packed_command


async def _counting_send(self: Any, command: Any, check_health: bool = True) -> None:
    global ROUND_TRIPS
    ROUND_TRIPS += 1
    await _send(self, command, check_health)


AbstractConnection.send_packed_command = _counting_send  # type: ignore[method-assign]

CHECKPOINT = {"messages": [{"role": "user", "content": "hello " * 20}, {"role": "assistant", "content": "hi " * 40}]}


async def timed(n: int, op: Callable[[int], Awaitable[Any]]) -> tuple[float, float]:
    """Seconds per op and round trips per op over ``n`` sequential calls (after a short warm-up)."""
    for i in range(min(50, n)):
        await op(i)
    start_rt, start = ROUND_TRIPS, time.perf_counter()
    for i in range(n):
        await op(i)
    return (time.perf_counter() - start) / n, (ROUND_TRIPS - start_rt) / n


async def bench_backend(store: SessionStore, n: int) -> dict[str, tuple[float, float]]:
    manager = SessionManager(store, max_sessions_per_user=None)
    ids: list[str] = []

    async def create(i: int) -> None:
        ids.append((await manager.create_session(f"user{i % 50}", tenant="bench")).id)

    async def save(i: int) -> None:
        await manager.save_checkpoint(ids[i % len(ids)], CHECKPOINT, tenant="bench")

    async def resume(i: int) -> None:
        await manager.resume_session(ids[i % len(ids)], tenant="bench")

    try:
        out = {"create": await timed(n, create)}
        out["save_checkpoint"] = await timed(n, save)
        out["resume"] = await timed(n, resume)
        return out
    finally:
        await manager.aclose()


async def bench_raw(url: str, n: int) -> tuple[float, float]:
    client = make_redis(url, decode_responses=False)
    payload = b"x" * 300

    async def get_set(i: int) -> None:
        await client.set(f"raw:{i % 100}", payload) if i % 2 else await client.get(f"raw:{i % 100}")

    try:
        return await timed(n, get_set)
    finally:
        await client.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="operations per measurement")
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    try:
        with local_redis() if args.redis_url is None else nullcontext(args.redis_url) as url:
            raw_s, raw_rt = await bench_raw(url, args.n)
            results = {
                "memory": await bench_backend(MemorySessionStore(), args.n),
                "sqlite": await bench_backend(SqliteSessionStore(tmp / "s.sqlite3"), args.n),
                "redis": await bench_backend(RedisSessionStore(url), args.n),
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"raw redis-py GET/SET: {1 / raw_s:,.0f} round trips/s ({raw_s * 1e6:.0f} µs each, {raw_rt:.1f} RT/op)\n")
    print("| backend | operation | ops/s | µs/op | RT/op | x raw RT |")
    print("|---|---|---:|---:|---:|---:|")
    for backend, ops in results.items():
        for name, (sec, rts) in ops.items():
            ratio = f"{sec / raw_s:.2f}" if backend == "redis" else "-"
            rt = f"{rts:.1f}" if backend == "redis" else "-"
            print(f"| {backend} | {name} | {1 / sec:,.0f} | {sec * 1e6:.0f} | {rt} | {ratio} |")


if __name__ == "__main__":
    asyncio.run(main())
