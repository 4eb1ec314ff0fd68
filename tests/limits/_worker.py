"""A worker process for the multi-process limit tests: ``python _worker.py MODE JSON_ARGS``.

Each worker connects (a full pool) and loads its scripts first, prints ``ready`` and waits for a
``go`` line on stdin, so that all workers really fire together; then it prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from typing import Any

from agent_runtime.errors import QuotaExceededError
from agent_runtime.limits.quota.base import Quota, QuotaLimits
from agent_runtime.limits.quota.redis import RedisQuotaLedger
from agent_runtime.limits.rate.base import Limit
from agent_runtime.limits.rate.redis import RedisRateLimiter
from agent_runtime.settings import RedisSettings


def _barrier(args: dict[str, Any]) -> None:
    if args.get("barrier", True):
        print("ready", flush=True)
        sys.stdin.readline()


async def rate(args: dict[str, Any]) -> dict[str, Any]:
    limiter = RedisRateLimiter(args["url"], RedisSettings(max_connections=args["attempts"]))
    limit = [Limit(args["key"], args["limit"], 60.0)]
    warmup = [Limit("{warmup}", 1)]  # open every pooled connection and load the script before the start
    await asyncio.gather(*(limiter.peek(warmup) for _ in range(args["attempts"])))
    _barrier(args)
    decisions = await asyncio.gather(*(limiter.acquire(limit) for _ in range(args["attempts"])))
    await limiter.aclose()
    return {"admitted": sum(d.allowed for d in decisions), "attempts": len(decisions)}


async def quota(args: dict[str, Any]) -> dict[str, Any]:
    ledger = RedisQuotaLedger(args["url"])
    quotas = [Quota(args["scope"], QuotaLimits(daily_tokens=args["daily_tokens"], monthly_usd=args["monthly_usd"]))]
    await asyncio.gather(*(ledger.status(quotas) for _ in range(args["runs"])))
    _barrier(args)
    rng = random.Random(args["seed"])

    async def run(i: int) -> str:
        try:
            res = await ledger.reserve(
                f"{args['name']}-{i}",
                quotas,
                tokens=args["bound_tokens"],
                cost_usd=args["bound_usd"],
                ttl_s=args["ttl"],
            )
        except QuotaExceededError:
            return "refused"
        if args.get("hang"):
            return "reserved"
        await asyncio.sleep(rng.uniform(0.0, 0.05))
        used = rng.randint(args["bound_tokens"] // 2, args["bound_tokens"])
        await ledger.settle(res, tokens=used, cost_usd=args["bound_usd"] * used / args["bound_tokens"])
        return "settled"

    outcomes = await asyncio.gather(*(run(i) for i in range(args["runs"])))
    if args.get("hang"):
        print(json.dumps({"reserved": outcomes.count("reserved")}), flush=True)
        await asyncio.sleep(3600)  # killed by the test before it ever settles
    await ledger.aclose()
    return {"settled": outcomes.count("settled"), "refused": outcomes.count("refused")}


if __name__ == "__main__":
    mode, raw = sys.argv[1], json.loads(sys.argv[2])
    result = asyncio.run(rate(raw) if mode == "rate" else quota(raw))
    print(json.dumps(result), flush=True)
