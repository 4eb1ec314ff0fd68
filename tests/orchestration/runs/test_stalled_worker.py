"""Issue 9: a worker that stalls (event loop blocked, as in a long GC pause) past ``abandon_after_s`` is
reaped while it is in fact alive; when it wakes and finishes the run, the run is charged exactly once:
the quota ledger ends at the run's real usage, and the usage ledger holds one row for it.

The reaper runs in another thread with its own event loop (and, on SQLite and Redis, its own
connections, like another worker process) while the run's loop is blocked."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.backends import url_for
from agent_runtime.limits.quota.base import Quota, QuotaLedger, QuotaLimits, usd_to_micros
from agent_runtime.models.offline import OfflineChatModel
from agent_runtime.monitoring.cost_tracker import build_cost_tracker
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.orchestration.middleware.cost import CostEstimate, CostTrackingMiddleware
from agent_runtime.orchestration.middleware.defaults import open_security_stores
from agent_runtime.orchestration.runs import ChargePolicy, RunReaper, RunRecord, RunStore, RunTracker, build_run_store
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, AgentResult, Principal
from tests.helpers import resolver_for

HEARTBEAT_S, ABANDON_S = 0.05, 0.2
ADA = Principal(tenant="acme", user="ada", key_id="k1", daily_tokens=100_000, monthly_usd=10.0)
QUOTA = Quota("{acme}:key:k1", QuotaLimits(daily_tokens=100_000, monthly_usd=10.0))
BOUND = CostEstimate(tokens=5_000, cost_usd=0.25)


class StallingModel(OfflineChatModel):
    """The offline model, but its first call waits until the run is in the registry, then blocks the
    event loop until ``release`` is set (no heartbeat can be written meanwhile)."""

    registered: Callable[[], Awaitable[None]] | None = None
    stalling: Any = None
    release: Any = None
    hang_after: bool = False
    """Once released, wait (to be cancelled) instead of answering."""

    async def _stall(self) -> None:
        if self.registered is not None:
            await self.registered()
            self.registered = None
            self.stalling.set()
            assert self.release.wait(30), "the reaper never claimed the stalled run"
            if self.hang_after:
                await asyncio.sleep(60)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        await self._stall()
        return await super()._agenerate(*args, **kwargs)

    async def _astream(self, *args: Any, **kwargs: Any) -> Any:
        await self._stall()
        async for chunk in super()._astream(*args, **kwargs):
            yield chunk


def reap_when_stalled(
    settings: Settings, shared: tuple[RunStore, QuotaLedger] | None, charge: ChargePolicy, model: StallingModel
) -> list[RunRecord]:
    """In another thread: once the run's loop is blocked, reap until its run is claimed, then unblock it."""

    async def reap() -> list[RunRecord]:
        security = None
        if shared is not None:  # memory: the one process's store and ledger
            store, ledger = shared
        else:  # another worker's connections to the same SQLite file / Redis server
            store, security = build_run_store(settings), open_security_stores(settings)
            ledger = security.ledger
        reaper = RunReaper(store, abandon_after_s=ABANDON_S, ledger=ledger, charge=charge)
        try:
            assert model.stalling.wait(30)
            for _ in range(1000):
                claimed = await reaper.reap()
                if claimed:
                    return claimed
                await asyncio.sleep(0.02)
            raise AssertionError("nothing claimed")
        finally:
            if security is not None:
                await store.aclose()
                await security.aclose()

    try:
        return asyncio.run(reap())
    finally:
        model.release.set()


@pytest.fixture
async def stack(backend_settings: Settings) -> AsyncIterator[Stack]:
    built = Stack(backend_settings)
    yield built
    await built.aclose()


class Stack:
    """A worker of one backend: tracker, cost middleware on the quota ledger, usage ledger, executor."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.security = open_security_stores(settings)
        self.costs = build_cost_tracker(settings)
        self.store = build_run_store(settings)
        self.tracker = RunTracker(self.store, heartbeat_s=HEARTBEAT_S, abandon_after_s=ABANDON_S)
        self.model = StallingModel(stalling=threading.Event(), release=threading.Event())
        self.executor = AgentExecutor(
            AgentFactory(settings, model_resolver=resolver_for(self.model)),
            middlewares=[CostTrackingMiddleware(self.security.ledger, lambda _: BOUND, usage_recorder=self.record)],
            run_tracker=self.tracker,
        )
        self.claimed: list[list[RunRecord]] = []
        self.reaper: threading.Thread | None = None

    async def record(self, context: AgentContext, result: AgentResult) -> None:
        if result.usage.total_tokens or result.usage.cost_usd:  # as the runtime's recorder: no empty rows
            await self.costs.record(result, context.principal, template=context.template)

    def stall(self, context: AgentContext, charge: ChargePolicy) -> None:
        """Make the run of ``context`` stall once registered, and reap it from another thread meanwhile."""
        key = f"{context.run_id}:1"

        async def registered() -> None:
            while await self.store.get(key) is None:
                await asyncio.sleep(0.01)

        self.model.registered = registered
        shared = (
            (self.store, self.security.ledger) if url_for(self.settings, "run_registry").engine == "memory" else None
        )
        target = lambda: self.claimed.append(reap_when_stalled(self.settings, shared, charge, self.model))  # noqa: E731
        self.reaper = threading.Thread(target=target)
        self.reaper.start()

    async def quota(self) -> list[tuple[int, int]]:
        return [(s.spent, s.reserved) for s in await self.security.ledger.status([QUOTA])]

    async def aclose(self) -> None:
        self.model.release.set()
        if self.reaper is not None:
            self.reaper.join(30)
        await self.tracker.aclose()
        await self.executor.aclose()
        await self.store.aclose()
        await self.security.aclose()
        await self.costs.aclose()


@pytest.mark.parametrize("charge", ["reserved", "release"])
async def test_a_stalled_worker_reaped_mid_run_is_charged_once(stack: Stack, charge: ChargePolicy) -> None:
    context = AgentContext(input="a haiku about rain", template="writer", principal=ADA)
    stack.stall(context, charge)
    result = await stack.executor.execute_async(context)
    assert result.status == "completed"
    [[reaped]] = stack.claimed
    assert reaped.run_id == context.run_id and reaped.charge == charge  # reaped while it was alive
    assert (await stack.store.get(f"{context.run_id}:1")).status == "abandoned"  # type: ignore[union-attr]

    # quota: the run's real usage, once (not the reaper's bound plus the real usage)
    tokens, micros = result.usage.total_tokens, usd_to_micros(result.usage.cost_usd)
    assert 0 < tokens < BOUND.tokens
    assert await stack.quota() == [(tokens, 0), (micros, 0)]

    # usage: one row, the real usage (the reaper writes none)
    [row] = await stack.costs.report(tenant="acme")
    assert (row.runs, row.total_tokens) == (1, tokens)


async def test_a_stalled_run_cancelled_after_it_was_reaped_is_charged_once(stack: Stack) -> None:
    """Cancelled after waking: the registry's answer (a shielded write) still reaches the settle."""
    context = AgentContext(input="a haiku about rain", template="writer", principal=ADA)
    stack.model.hang_after = True
    stack.stall(context, "reserved")
    task = asyncio.create_task(stack.executor.execute_async(context))
    for _ in range(3000):
        if stack.claimed:
            break
        await asyncio.sleep(0.01)
    assert stack.claimed
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the shielded settle finishes after the cancellation
        if await stack.quota() == [(0, 0), (0, 0)]:
            break
        await asyncio.sleep(0.02)
    assert await stack.quota() == [(0, 0), (0, 0)]  # no usage: the reaper's charge is given back
    assert await stack.costs.report(tenant="acme") == []
