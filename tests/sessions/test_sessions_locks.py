"""The per-session run lock: no overlap, bounded waiting, fail-fast, and expiry of a crashed holder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from agent_runtime.errors import SessionBusyError
from agent_runtime.sessions import SessionManager
from agent_runtime.sessions.models import session_key


async def _run(manager: SessionManager, session_id: str, name: str, log: list[str], hold_s: float = 0.05) -> None:
    async with manager.lock(session_id):
        log.append(f"{name}:in")
        await asyncio.sleep(hold_s)
        log.append(f"{name}:out")


def _no_overlap(log: list[str]) -> None:
    assert all(log[i].split(":")[0] == log[i + 1].split(":")[0] for i in range(0, len(log), 2)), log


async def test_holders_never_overlap_in_one_process(make_manager: Callable[..., SessionManager]) -> None:
    manager = make_manager(lock_timeout_s=5)
    log: list[str] = []
    await asyncio.gather(*(_run(manager, "chat-1", f"r{i}", log) for i in range(5)))
    assert len(log) == 10
    _no_overlap(log)


async def test_holders_never_overlap_across_managers(make_manager: Callable[..., SessionManager]) -> None:
    """Two managers stand in for two workers: only the backend lease keeps them apart."""
    a, b = make_manager(lock_timeout_s=5), make_manager(lock_timeout_s=5)
    log: list[str] = []
    await asyncio.gather(*(_run(m, "chat-1", f"r{i}", log) for i, m in enumerate([a, b, a, b])))
    assert len(log) == 8
    _no_overlap(log)


async def test_other_sessions_are_not_blocked(make_manager: Callable[..., SessionManager]) -> None:
    manager = make_manager(busy_policy="fail")
    async with manager.lock("chat-1"), manager.lock("chat-2"):
        pass


@pytest.mark.parametrize("same_manager", [True, False])
async def test_fail_policy_raises_at_once(make_manager: Callable[..., SessionManager], same_manager: bool) -> None:
    holder = make_manager(busy_policy="fail")
    other = holder if same_manager else make_manager(busy_policy="fail")
    async with holder.lock("chat-1"):
        with pytest.raises(SessionBusyError):
            async with other.lock("chat-1"):
                pass
    async with other.lock("chat-1"):  # free again once released
        pass


@pytest.mark.parametrize("same_manager", [True, False])
async def test_wait_policy_gives_up_after_the_timeout(
    make_manager: Callable[..., SessionManager], same_manager: bool
) -> None:
    holder = make_manager(lock_timeout_s=0.2)
    other = holder if same_manager else make_manager(lock_timeout_s=0.2)
    loop = asyncio.get_running_loop()
    async with holder.lock("chat-1"):
        started = loop.time()
        with pytest.raises(SessionBusyError):
            async with other.lock("chat-1"):
                pass
        assert loop.time() - started >= 0.19


async def test_lease_is_renewed_while_held(make_manager: Callable[..., SessionManager]) -> None:
    holder = make_manager(lock_lease_s=0.2)
    other = make_manager(busy_policy="fail")
    async with holder.lock("chat-1"):
        await asyncio.sleep(0.5)  # longer than the lease: renewal must keep it
        with pytest.raises(SessionBusyError):
            async with other.lock("chat-1"):
                pass


async def test_lock_of_a_crashed_holder_expires(make_manager: Callable[..., SessionManager]) -> None:
    """A worker that died holding the lease (never released, never renewed) blocks only until it expires."""
    manager = make_manager(lock_timeout_s=3)
    key = session_key("default", "chat-1")  # where manager.lock("chat-1") keeps its lease
    assert await manager.store.acquire_lease(key, "dead-worker-token", 0.3)
    assert not await manager.store.acquire_lease(key, "someone-else", 0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with manager.lock("chat-1"):
        waited = loop.time() - started
        await manager.store.release_lease(key, "dead-worker-token")  # a stale token cannot free our lease
        assert not await manager.store.acquire_lease(key, "someone-else", 0.3)
    assert 0.2 <= waited < 2.5
