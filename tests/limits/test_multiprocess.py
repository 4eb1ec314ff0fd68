"""Several worker processes sharing one real redis-server: limits and quotas hold exactly across them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from agent_runtime.limits.quota.base import Quota, QuotaLimits
from agent_runtime.limits.quota.redis import RedisQuotaLedger

pytestmark = pytest.mark.redis
WORKER = str(Path(__file__).with_name("_worker.py"))


def spawn(mode: str, args: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, mode, json.dumps(args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_together(procs: list[subprocess.Popen[str]]) -> list[subprocess.Popen[str]]:
    """Wait until every worker is connected and ready, then release them all at once."""
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", (line, proc.stderr.read() if proc.stderr else "")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return procs


def collect(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def test_four_processes_share_one_limit_exactly(redis_url: str) -> None:
    args = {"url": redis_url, "key": "{acme}:key:shared:rpm", "limit": 100, "attempts": 100}
    results = collect(start_together([spawn("rate", args) for _ in range(4)]))
    assert sum(r["attempts"] for r in results) == 400
    assert sum(r["admitted"] for r in results) == 100


QUOTA = {"daily_tokens": 10_000, "monthly_usd": 1.0}


def quota_args(redis_url: str, name: str, runs: int, **extra: Any) -> dict[str, Any]:
    return {
        "url": redis_url,
        "scope": "{acme}:tenant",
        "name": name,
        "runs": runs,
        "bound_tokens": 200,
        "bound_usd": 0.02,
        "ttl": 60,
        "seed": hash(name) % 1000,
        **QUOTA,
        **extra,
    }


async def _status(redis_url: str) -> tuple[int, int, int, int]:
    ledger = RedisQuotaLedger(redis_url)
    try:
        tokens, usd = await ledger.status([Quota("{acme}:tenant", QuotaLimits(**QUOTA))])  # type: ignore[arg-type]
    finally:
        await ledger.aclose()
    return tokens.spent, tokens.reserved, usd.spent, usd.reserved


async def _prespend(redis_url: str, tokens: int, usd: float) -> None:
    ledger = RedisQuotaLedger(redis_url)
    quotas = [Quota("{acme}:tenant", QuotaLimits(**QUOTA))]  # type: ignore[arg-type]
    res = await ledger.reserve("prespend", quotas, tokens=tokens, cost_usd=usd, ttl_s=60)
    await ledger.settle(res, tokens=tokens, cost_usd=usd)
    await ledger.aclose()


async def test_fifty_concurrent_runs_from_four_processes_never_overspend(redis_url: str) -> None:
    await _prespend(redis_url, 9_000, 0.90)  # 1000 tokens and $0.10 left; each run reserves 200 / $0.02
    runs = [13, 13, 12, 12]
    results = collect(start_together([spawn("quota", quota_args(redis_url, f"w{i}", n)) for i, n in enumerate(runs)]))
    assert sum(r["settled"] + r["refused"] for r in results) == 50
    settled = sum(r["settled"] for r in results)
    assert 5 <= settled < 50  # at least the 5 that fit at once; many refused
    tokens_spent, tokens_reserved, micros_spent, micros_reserved = await _status(redis_url)
    assert tokens_spent <= 10_000 and micros_spent <= 1_000_000
    assert tokens_reserved == 0 and micros_reserved == 0
    assert not _reservation_fields(redis_url)


def _reservation_fields(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        found = []
        for key in client.scan_iter("ar:q:*"):
            if client.type(key) == "hash":
                found += [f for f in client.hkeys(key) if f.startswith("r:")]
            elif client.type(key) == "zset":
                found += client.zrange(key, 0, -1)
        return found
    finally:
        client.close()


TTL = 4.0


async def test_reservations_of_a_killed_process_expire(redis_url: str) -> None:
    await _prespend(redis_url, 9_000, 0.50)
    hung = spawn("quota", quota_args(redis_url, "doomed", 10, ttl=TTL, hang=True, barrier=False))
    assert hung.stdout is not None
    line = hung.stdout.readline()  # the worker has reserved and now hangs mid-run
    reserved_at = time.monotonic()
    assert json.loads(line)["reserved"] == 5  # 1000 tokens left, 200 each
    os.kill(hung.pid, signal.SIGKILL)
    hung.communicate(timeout=10)  # reaps it and closes its pipes
    _, reserved, _, _ = await _status(redis_url)
    assert reserved == 1000  # still held right after the kill: the quota stays safe

    # Meanwhile other workers are refused, then admitted again once the reservations expired.
    results = collect([spawn("quota", quota_args(redis_url, "early", 3, barrier=False))])
    assert results[0]["refused"] == 3
    time.sleep(max(0.0, reserved_at + TTL + 0.1 - time.monotonic()))
    results = collect([spawn("quota", quota_args(redis_url, f"late{i}", 5, barrier=False)) for i in range(2)])
    assert sum(r["settled"] for r in results) >= 5
    spent, reserved, micros_spent, micros_reserved = await _status(redis_url)
    assert spent <= 10_000 and micros_spent <= 1_000_000
    assert reserved == 0 and micros_reserved == 0
    assert not _reservation_fields(redis_url)
