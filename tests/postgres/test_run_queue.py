"""Pending run records as the fleet's queue on PostgreSQL: ``claim_pending`` with ``FOR UPDATE SKIP LOCKED``."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent_runtime.backends import build
from agent_runtime.runs import Run
from agent_runtime.runs.postgres import PostgresRunRecordStore
from agent_runtime.settings import Settings
from agent_runtime.types import Principal

pytestmark = pytest.mark.postgres


def pending(run_id: str, at: float) -> Run:
    principal = Principal(tenant="acme", user="ann", scopes=frozenset({"agents:run"}))
    fields = {"run_id": run_id, "tenant": "acme", "user": "ann", "template": "writer", "input": "hi"}
    return Run.model_validate(fields | {"status": "pending", "created_at": at, "principal": principal})


async def test_workers_claiming_at_once_never_share_a_run(postgres_url: str) -> None:
    stores: list[PostgresRunRecordStore] = [build("run_records", Settings(state_url=postgres_url)) for _ in range(4)]
    try:
        base = time.time()
        for i in range(40):
            await stores[0].create(pending(f"run_{i:02d}", base + i))
        batches = await asyncio.gather(*(s.claim_pending(3, status="running") for s in stores for _ in range(4)))
        claimed = [run.run_id for batch in batches for run in batch]
        assert len(claimed) == len(set(claimed)) == 40  # every run once, none twice
        assert all(run.status == "running" for batch in batches for run in batch)
        assert await stores[1].pending() == []
        assert await stores[2].claim_pending(5, status="running") == []
    finally:
        for store in stores:
            await store.aclose()
