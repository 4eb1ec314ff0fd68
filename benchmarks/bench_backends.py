"""HTTP runs/s and p99 at concurrency 16 with the state on SQLite, Redis and PostgreSQL, side by side.

One ``agent-runtime serve`` worker per backend, all started first, then measured in interleaved rounds
(sqlite, redis, postgres, sqlite, ...) so that machine noise hits each backend alike; the median of
the rounds is printed with its spread (min-max). PostgreSQL runs as production would: every family on
PostgreSQL (a database of its own on the machine's server, created and dropped here) and rate limits
on Redis (``STATE_URLS__RATE_LIMITS``). Offline model, the full default chain.

    .venv/bin/python benchmarks/bench_backends.py [--requests 400] [--rounds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import uuid
from collections.abc import Iterator

from _servers import free_port, local_redis
from bench_http import load, pct, runtime_target, start_server

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    name = f"ar_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="runs per backend per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with local_redis() as redis_url, postgres_database() as pg_url, contextlib.ExitStack() as stack:
        setups = {
            "sqlite": ("sqlite", {}),
            "redis": ("redis", {"AGENT_RUNTIME_REDIS_URL": redis_url}),
            "postgres": (
                "sqlite",
                {
                    "AGENT_RUNTIME_STATE_URL": pg_url,
                    "AGENT_RUNTIME_STATE_URLS__RATE_LIMITS": redis_url,
                    "AGENT_RUNTIME_POSTGRES__MAX_CONNECTIONS": "12",
                },
            ),
        }
        targets = {}
        for name, (backend, env) in setups.items():
            port = free_port()
            proc, key = start_server(backend, port, stack.enter_context(tempfile.TemporaryDirectory()), env)
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
            targets[name] = runtime_target(port, key)
        results = asyncio.run(_measure(targets, args.requests, args.rounds, args.concurrency))
    print(f"POST /v1/runs at c={args.concurrency}, {args.requests} runs x {args.rounds} interleaved rounds")
    print(f"{'backend':<10} {'runs/s median (min-max)':<28} {'p99 ms median (min-max)':<28}")
    for name, rounds in results.items():
        rates, p99s = [r for r, _ in rounds], [p for _, p in rounds]
        print(f"{name:<10} {_spread(rates):<28} {_spread(p99s):<28}")
    redis_rate = statistics.median(r for r, _ in results["redis"])
    pg_rate = statistics.median(r for r, _ in results["postgres"])
    print(f"postgres / redis runs/s: {pg_rate / redis_rate:.2f}")


async def _measure(targets: dict, requests: int, rounds: int, concurrency: int) -> dict[str, list[tuple[float, float]]]:
    for target in targets.values():  # warm-up: connections, prepared statements, templates
        await load(target, concurrency, concurrency * 4)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, target in targets.items():
            rate, latencies = await load(target, concurrency, requests)
            results[name].append((rate, pct(latencies, 0.99)))
    return results


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


if __name__ == "__main__":
    main()
