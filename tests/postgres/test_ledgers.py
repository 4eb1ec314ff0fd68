"""The PostgreSQL quota and usage ledgers as a fleet uses them: several workers' pools on one database."""

from __future__ import annotations

import asyncio
from datetime import date

import psycopg
import pytest

from agent_runtime.accounting import JournalEntry, quota_appliers, settle_entry, usage_appliers, usage_entry
from agent_runtime.backends import build
from agent_runtime.errors import QuotaExceededError
from agent_runtime.limits.quota.base import Quota, QuotaLedger, QuotaLimits
from agent_runtime.monitoring.usage import UsageRecord, UsageStore
from agent_runtime.settings import PostgresSettings, Settings

pytestmark = pytest.mark.postgres
QUOTA = [Quota("{acme}:tenant", QuotaLimits(daily_tokens=1_000, monthly_usd=5.0))]


def fleet(url: str, family: str, workers: int) -> list:
    """``workers`` stores of ``family``, each with its own pool (like separate processes)."""
    settings = Settings(state_url=url, postgres=PostgresSettings(max_connections=4))
    return [build(family, settings) for _ in range(workers)]


async def test_reserves_from_many_workers_at_concurrency_64_hold_the_quota_exactly(postgres_url: str) -> None:
    ledgers: list[QuotaLedger] = fleet(postgres_url, "quotas", 4)

    async def reserve(i: int) -> bool:
        try:
            await ledgers[i % 4].reserve(f"r{i}", QUOTA, tokens=30, cost_usd=0.01, ttl_s=60)
            return True
        except QuotaExceededError:
            return False

    try:
        admitted = [i for i, ok in enumerate(await asyncio.gather(*(reserve(i) for i in range(64)))) if ok]
        assert len(admitted) == 1_000 // 30  # 33: never one more, never one fewer
        [tokens, _] = await ledgers[0].status(QUOTA)
        assert tokens.reserved == 33 * 30 and tokens.spent == 0
    finally:
        for ledger in ledgers:
            await ledger.aclose()


async def test_a_settle_replayed_by_two_workers_counts_once(postgres_url: str) -> None:
    ledgers: list[QuotaLedger] = fleet(postgres_url, "quotas", 2)
    try:
        reservation = await ledgers[0].reserve("run_1", QUOTA, tokens=100, cost_usd=0.5, ttl_s=60)
        entry = settle_entry("run_1", 1, reservation, tokens=40, cost_usd=0.2)
        appliers = [quota_appliers(ledger)["settle"] for ledger in ledgers]
        await asyncio.gather(*(apply(entry) for apply in appliers for _ in range(3)))
        tokens, usd = await ledgers[1].status(QUOTA)
        assert (tokens.spent, tokens.reserved, usd.spent) == (40, 0, 200_000)
    finally:
        for ledger in ledgers:
            await ledger.aclose()


async def test_usage_is_one_row_per_attempt_idempotent_and_plain_sql(postgres_url: str) -> None:
    stores: list[UsageStore] = fleet(postgres_url, "usage", 2)
    day = date(2026, 12, 7)
    try:
        for attempt in (1, 2):  # a retried run: each attempt was billed
            records = [
                UsageRecord("acme", "ada", "writer", "offline", day, input_tokens=10, output_tokens=5, cost_usd=0.001),
                UsageRecord("acme", "ada", "writer", "gpt-x", day, input_tokens=1, runs=0),
            ]
            entry: JournalEntry = usage_entry("run_9", attempt, records)
            for store in stores:  # replayed on the other worker too
                await usage_appliers(store)["usage"](entry)
        [offline] = [r for r in await stores[1].records(tenant="acme") if r.model == "offline"]
        assert (offline.runs, offline.input_tokens, offline.output_tokens) == (2, 20, 10)
        with psycopg.connect(postgres_url) as conn:
            rows = conn.execute(
                "SELECT run_id, attempt, model, input_tokens FROM ar_usage ORDER BY attempt, model"
            ).fetchall()
        assert rows == [
            ("run_9", 1, "gpt-x", 1),
            ("run_9", 1, "offline", 10),
            ("run_9", 2, "gpt-x", 1),
            ("run_9", 2, "offline", 10),
        ]
    finally:
        for store in stores:
            await store.aclose()
