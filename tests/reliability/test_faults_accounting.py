"""Redis killed while runs are live: every settle is journalled, applied once Redis is back, and a
restarted worker replays what its journal still holds. Quota ``spent`` ends equal to the tokens the
callers were told they used, with nothing left reserved."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent_runtime._redis import circuit_breaker
from agent_runtime.accounting import JournalFullError
from agent_runtime.limits.quota.base import Quota, QuotaLimits
from agent_runtime.orchestration.middleware.cost import CostTrackingMiddleware
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, AgentResult
from tests.conftest import RedisServer
from tests.reliability._faults import redis_settings

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]
DAILY = 10_000_000
RUNS = 6


def _settings(url: str, tmp: Path, **reliability: object) -> Settings:
    rel = {"breaker_failures": 3, "breaker_cooldown_s": 0.3, **reliability}
    return redis_settings(url, tmp, offline_token_latency_ms=15, reliability=rel)


def _cost(runtime: Runtime) -> CostTrackingMiddleware:
    return next(m for m in runtime.executor.middlewares if isinstance(m, CostTrackingMiddleware))


async def _until(predicate: object, what: str, timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _live_runs_across_a_redis_kill(runtime: Runtime, redis: RedisServer, key: str, quota: Quota) -> int:
    """``RUNS`` runs reserved, Redis killed while they generate; returns the tokens their callers got."""
    contexts = [AgentContext(input=f"tell me a story {i}", template="writer", credentials=key) for i in range(RUNS)]
    bound = _cost(runtime).estimate(contexts[0]).tokens
    tasks = [asyncio.create_task(runtime.executor.execute_async(c)) for c in contexts]

    async def all_reserved() -> bool:
        [status] = await runtime.security.ledger.status([quota])
        return status.reserved >= RUNS * bound - RUNS * 2  # inputs differ by a digit at most

    await _until(all_reserved, "every run's reservation")
    redis.kill()
    results: list[AgentResult] = await asyncio.gather(*tasks)
    assert [r.status for r in results] == ["completed"] * RUNS
    return sum(r.usage.total_tokens for r in results)


async def _spent_reserved(runtime: Runtime, quota: Quota) -> tuple[int, int]:
    [status] = await runtime.security.ledger.status([quota])
    return status.spent, status.reserved


async def _ledger_tokens(runtime: Runtime, user: str) -> tuple[int, int]:
    """(tokens, runs) the usage ledger holds for ``user``."""
    rows = await runtime.cost_tracker.report(tenant="acme", user=user)
    return sum(r.input_tokens + r.output_tokens for r in rows), sum(r.runs for r in rows)


def _reset_breaker(url: str) -> None:
    breaker = circuit_breaker(url)
    if breaker is not None:
        breaker.reset()


async def test_settles_journalled_while_redis_is_down_are_applied_once_it_is_back(
    fault_redis: RedisServer, tmp_path: Path
) -> None:
    runtime = await Runtime.create(_settings(fault_redis.url, tmp_path, accounting_journal_max_entries=2 * RUNS))
    key, record = await runtime.keys.create_key("acme", "ada", ["agents:run:*"], daily_tokens=DAILY)
    quota = Quota(f"{{acme}}:key:{record.key_id}", QuotaLimits(daily_tokens=DAILY))
    outbox = runtime.security.outbox
    assert outbox is not None
    try:
        told = await _live_runs_across_a_redis_kill(runtime, fault_redis, key, quota)
        assert told > 0 and outbox.journal.size() == 2 * RUNS  # a settle and a usage row each: nothing lost
        with pytest.raises(JournalFullError) as full:  # the journal is at its bound: new runs are refused
            await runtime.executor.execute_async(AgentContext(input="one more", template="writer", credentials=key))
        assert full.value.status_code == 503 and outbox.journal.size() == 2 * RUNS
        fault_redis.start()  # appendonly: the reservations survived the kill

        async def drained() -> bool:
            return outbox.journal.size() == 0

        await _until(drained, "the journal to drain after Redis came back")
        assert await _spent_reserved(runtime, quota) == (told, 0)
        assert await _ledger_tokens(runtime, "ada") == (told, RUNS)
        assert await outbox.replay() == 0  # and a replay now finds nothing to count again
    finally:
        _reset_breaker(fault_redis.url)
        await runtime.aclose()


async def test_a_restarted_worker_replays_its_journal(fault_redis: RedisServer, tmp_path: Path) -> None:
    settings = _settings(fault_redis.url, tmp_path)
    runtime = await Runtime.create(settings)
    key, record = await runtime.keys.create_key("acme", "bo", ["agents:run:*"], daily_tokens=DAILY)
    quota = Quota(f"{{acme}}:key:{record.key_id}", QuotaLimits(daily_tokens=DAILY))
    try:
        told = await _live_runs_across_a_redis_kill(runtime, fault_redis, key, quota)
    finally:
        await runtime.aclose()  # its last pass fails too: the entries stay in DATA_DIR's journal
    _reset_breaker(fault_redis.url)
    fault_redis.start()
    restarted = await Runtime.create(settings)
    outbox = restarted.security.outbox
    assert outbox is not None and outbox.journal.size() == 2 * RUNS
    try:
        restarted.start_reaper()  # a server's start: replays the journal

        async def drained() -> bool:
            return outbox.journal.size() == 0

        await _until(drained, "the restarted worker's replay")
        assert await _spent_reserved(restarted, quota) == (told, 0)
        assert await _ledger_tokens(restarted, "bo") == (told, RUNS)
    finally:
        await restarted.aclose()


def _served_env(redis_url: str) -> dict[str, str]:
    return {
        "AGENT_RUNTIME_STATE_BACKEND": "redis",
        "AGENT_RUNTIME_REDIS_URL": redis_url,
        "AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": "15",
        "AGENT_RUNTIME_API_KEY_CACHE_S": "600",
        "AGENT_RUNTIME_REDIS__KEY_PREFIX": "rel",  # as redis_settings
        "AGENT_RUNTIME_REDIS__CONNECT_TIMEOUT": "0.5",
        "AGENT_RUNTIME_REDIS__SOCKET_TIMEOUT": "1.0",
        "AGENT_RUNTIME_RELIABILITY__BREAKER_COOLDOWN_S": "0.3",
    }


async def test_a_sigkilled_worker_loses_nothing_it_answered(fault_redis: RedisServer, tmp_path: Path) -> None:
    """Runs answered while Redis is down, then the worker SIGKILLed: the restarted worker replays its
    journal, and quota and usage ledger hold exactly what the clients were told."""
    import httpx

    from tests.reliability.conftest import Worker

    env = _served_env(fault_redis.url)
    admin = await Runtime.create(
        redis_settings(fault_redis.url, tmp_path / "admin", reliability={"breaker_failures": 3})
    )
    key, record = await admin.keys.create_key("acme", "cy", ["agents:run:*"], daily_tokens=DAILY)
    quota = Quota(f"{{acme}}:key:{record.key_id}", QuotaLimits(daily_tokens=DAILY))
    await admin.aclose()
    (tmp_path / "w").mkdir()
    worker = Worker(tmp_path / "w", env)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=worker.url, timeout=30) as client:
            warm = await client.post("/v1/runs", json={"template": "writer", "input": "hi"}, headers=headers)
            assert warm.status_code == 200, warm.text  # the key is now cached by the worker
            told = warm.json()["usage"]["total_tokens"]
            sent = [
                asyncio.create_task(
                    client.post("/v1/runs", json={"template": "writer", "input": f"story {i}"}, headers=headers)
                )
                for i in range(RUNS)
            ]
            probe = await Runtime.create(redis_settings(fault_redis.url, tmp_path / "probe"))

            bound = _cost(probe).estimate(AgentContext(input="story 0", template="writer")).tokens

            async def reserved_by_all() -> bool:  # every run reserved (same bound: inputs of one length)
                [status] = await probe.security.ledger.status([quota])
                return status.reserved == RUNS * bound

            await _until(reserved_by_all, "the runs' reservations")
            await probe.aclose()
            fault_redis.kill()
            answers = await asyncio.gather(*sent)
        assert [a.status_code for a in answers] == [200] * RUNS, [a.text for a in answers]
        told += sum(a.json()["usage"]["total_tokens"] for a in answers)
    finally:
        worker.proc.kill()  # SIGKILL: no shutdown, no last drain
        worker.proc.wait()
    _reset_breaker(fault_redis.url)
    fault_redis.start()
    restarted = Worker(tmp_path / "w", env)  # same DATA_DIR: replays its journal at start
    check = await Runtime.create(redis_settings(fault_redis.url, tmp_path / "check"))
    try:

        async def settled() -> bool:
            spent, reserved = await _spent_reserved(check, quota)
            return spent == told and reserved == 0

        await _until(settled, "the restarted worker's replay")
        assert await _ledger_tokens(check, "cy") == (told, RUNS + 1)
    finally:
        restarted.stop()
        await check.aclose()
