"""One contract for every session backend (memory, SQLite, real Redis)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis as redis_sync
from tests.helpers import ManualClock

from agent_runtime.errors import (
    BackendError,
    ConflictError,
    InputTooLargeError,
    QuotaExceededError,
    SessionNotFoundError,
    ValidationError,
)
from agent_runtime.sessions import MemorySessionStore, SessionManager
from agent_runtime.sessions.base import SessionStore
from agent_runtime.sessions.models import session_key
from agent_runtime.sessions.postgres import PostgresSessionStore
from agent_runtime.sessions.redis import RedisSessionStore
from agent_runtime.sessions.sqlite import SqliteSessionStore

BAD_IDS = ["a}:*", "x\ny", "", "a b", "{x}", "*", "ses_1\r\nFLUSHALL", "a" * 201, "a|b", "../etc"]


async def test_create_and_get(manager: SessionManager) -> None:
    s = await manager.create_session("alice", tenant="t1", template="writer", metadata={"k": 1})
    assert s.id.startswith("ses_") and s.tenant == "t1" and s.user_id == "alice" and s.template == "writer"
    assert s.status == "active" and s.message_count == 0 and s.metadata == {"k": 1}
    assert s.expires_at - s.created_at == timedelta(seconds=manager.ttl_s)
    got = await manager.get_session(s.id, tenant="t1")
    assert got == s
    with pytest.raises(SessionNotFoundError):  # ids are per tenant: not found in the default one
        await manager.get_session(s.id)
    assert await manager.get_session(s.id, tenant="t1", user_id="alice") == s


async def test_default_tenant_and_chosen_id(manager: SessionManager) -> None:
    s = await manager.create_session("bob", session_id="my-chat.1")
    assert s.id == "my-chat.1" and s.tenant == "default" and not s.per_user
    with pytest.raises(ConflictError):  # only one's own session of the id is a conflict
        await manager.create_session("bob", session_id="my-chat.1")


async def test_a_user_choosing_an_id_another_user_holds_gets_a_session_of_his_own(manager: SessionManager) -> None:
    """No existence oracle inside a tenant: the outcome is that of a free id."""
    alice = await manager.create_session("alice", tenant="t1", session_id="shared-1")
    await manager.save_checkpoint("shared-1", {"who": "alice"}, tenant="t1", user_id="alice")
    bob = await manager.create_session("bob", tenant="t1", session_id="shared-1")
    assert (bob.id, bob.user_id, bob.per_user) == ("shared-1", "bob", True) and bob.key != alice.key
    with pytest.raises(ConflictError):
        await manager.create_session("bob", tenant="t1", session_id="shared-1")
    with pytest.raises(ConflictError):
        await manager.create_session("alice", tenant="t1", session_id="shared-1")
    assert (await manager.resume_session("shared-1", tenant="t1", user_id="bob")).checkpoint is None
    assert (await manager.resume_session("shared-1", tenant="t1", user_id="alice")).checkpoint == {"who": "alice"}
    assert (await manager.get_session("shared-1", tenant="t1")).user_id == "alice"  # the tenant's namespace
    assert (await manager.get_session("shared-1", tenant="t1", namespace="bob")).user_id == "bob"
    assert [s.id for s in await manager.list_sessions("t1", "bob")] == ["shared-1"]
    async with (
        manager.lock("shared-1", tenant="t1", user_id="alice"),
        manager.lock("shared-1", tenant="t1", user_id="bob"),
    ):
        pass  # one lock per session
    await manager.delete_session("shared-1", tenant="t1", user_id="bob")
    assert (await manager.get_session("shared-1", tenant="t1", user_id="alice")).key == alice.key
    with pytest.raises(SessionNotFoundError):
        await manager.get_session("shared-1", tenant="t1", user_id="bob")
    with pytest.raises(ValidationError):
        await manager.create_session("bob", tenant="t1", session_id="x" * 182)


async def test_each_tenant_has_its_own_ids(manager: SessionManager) -> None:
    """Another tenant naming the same id gets its own session: no conflict that would reveal the id."""
    a = await manager.create_session("alice", tenant="t1", session_id="support")
    await manager.save_checkpoint("support", {"who": "alice"}, tenant="t1")
    b = await manager.create_session("bob", tenant="t2", session_id="support")
    assert (a.id, a.tenant) == ("support", "t1") and (b.id, b.tenant) == ("support", "t2")
    assert (await manager.resume_session("support", tenant="t2")).checkpoint is None
    await manager.delete_session("support", tenant="t2")
    assert (await manager.resume_session("support", tenant="t1")).checkpoint == {"who": "alice"}
    async with manager.lock("support", tenant="t1"), manager.lock("support", tenant="t2"):
        pass  # two locks: one per tenant's session


async def test_unknown_session(manager: SessionManager) -> None:
    for call in (
        manager.get_session("ses_nope"),
        manager.resume_session("ses_nope"),
        manager.save_checkpoint("ses_nope", {"a": 1}),
        manager.delete_session("ses_nope"),
        manager.touch("ses_nope"),
        manager.record_run("ses_nope", 2),
    ):
        with pytest.raises(SessionNotFoundError):
            await call


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_malformed_ids_are_refused(manager: SessionManager, bad: str) -> None:
    with pytest.raises(ValidationError):
        await manager.create_session("alice", session_id=bad)
    with pytest.raises(ValidationError):
        await manager.create_session(bad)
    with pytest.raises(ValidationError):
        await manager.create_session("alice", tenant=bad)
    for call in (
        manager.get_session(bad),
        manager.resume_session(bad),
        manager.save_checkpoint(bad, {}),
        manager.delete_session(bad),
        manager.list_sessions("t1", bad),
    ):
        with pytest.raises(ValidationError):
            await call
    with pytest.raises(ValidationError):
        async with manager.lock(bad):
            pass


async def test_ownership_without_existence_leak(manager: SessionManager) -> None:
    s = await manager.create_session("alice", tenant="t1")
    await manager.save_checkpoint(s.id, {"step": 1}, tenant="t1")
    for tenant, user in (("t2", "alice"), ("t1", "mallory"), ("t2", "mallory")):
        for call in (
            manager.get_session(s.id, tenant=tenant, user_id=user),
            manager.resume_session(s.id, tenant=tenant, user_id=user),
            manager.save_checkpoint(s.id, {"step": 666}, tenant=tenant, user_id=user),
            manager.delete_session(s.id, tenant=tenant, user_id=user),
            manager.get_messages(s.id, tenant=tenant, user_id=user),
        ):
            with pytest.raises(SessionNotFoundError) as caught:
                await call
            assert caught.value.message == f"session {s.id} not found"  # same as for an unknown id
    # a user of the same tenant naming the id gets a session of his own too, as for a free id
    mine = await manager.open_for_run(s.id, tenant="t1", user_id="mallory", create_missing=True)
    assert (mine.user_id, mine.per_user) == ("mallory", True)
    assert (await manager.resume_session(s.id, tenant="t1", user_id="mallory")).checkpoint is None
    await manager.delete_session(s.id, tenant="t1", user_id="mallory")
    with pytest.raises(SessionNotFoundError):
        await manager.open_for_run(s.id, tenant="t2", user_id="mallory", create_missing=False)
    # another tenant naming the id gets a session of its own (ids are per tenant), not a view of alice's
    own = await manager.open_for_run(s.id, tenant="t2", user_id="mallory", create_missing=True)
    assert (own.tenant, own.user_id) == ("t2", "mallory")
    assert (await manager.resume_session(s.id, tenant="t2")).checkpoint is None
    await manager.delete_session(s.id, tenant="t2")
    assert (await manager.resume_session(s.id, tenant="t1", user_id="alice")).checkpoint == {"step": 1}
    assert await manager.list_sessions("t2", "alice") == []
    assert await manager.list_sessions("t2", "mallory") == []


async def test_checkpoint_roundtrip_and_limits(make_manager: Callable[..., SessionManager]) -> None:
    manager = make_manager(max_checkpoint_bytes=200)
    s = await manager.create_session("alice")
    session, data = await manager.resume_session(s.id)
    assert session == s and data is None
    await manager.save_checkpoint(s.id, {"messages": ["hi"], "n": 1.5, "nested": {"ok": True}})
    await manager.save_checkpoint(s.id, {"messages": ["hi", "there"]})
    assert (await manager.resume_session(s.id)).checkpoint == {"messages": ["hi", "there"]}
    with pytest.raises(InputTooLargeError):
        await manager.save_checkpoint(s.id, {"blob": "x" * 500})
    with pytest.raises(ValidationError):
        await manager.save_checkpoint(s.id, {"not_json": {1, 2}})
    assert (await manager.resume_session(s.id)).checkpoint == {"messages": ["hi", "there"]}


async def test_list_touch_record_delete(make_manager: Callable[..., SessionManager], clock: ManualClock) -> None:
    manager = make_manager(clock=clock)
    first = await manager.create_session("alice", tenant="t1")
    clock.advance(1)
    second = await manager.create_session("alice", tenant="t1")
    await manager.create_session("bob", tenant="t1")
    assert [s.id for s in await manager.list_sessions("t1", "alice")] == [second.id, first.id]

    touched = await manager.touch(first.id, ttl_s=10, tenant="t1")
    assert touched.expires_at - touched.updated_at == timedelta(seconds=10)
    assert (await manager.get_session(first.id, tenant="t1")).expires_at == touched.expires_at
    recorded = await manager.record_run(first.id, 4, tenant="t1")
    assert recorded.message_count == 4 and (await manager.get_session(first.id, tenant="t1")).message_count == 4
    assert recorded.expires_at - recorded.updated_at == timedelta(seconds=10)

    await manager.save_checkpoint(first.id, {"a": 1}, tenant="t1")
    await manager.delete_session(first.id, tenant="t1", user_id="alice")
    with pytest.raises(SessionNotFoundError):
        await manager.get_session(first.id, tenant="t1")
    assert [s.id for s in await manager.list_sessions("t1", "alice")] == [second.id]
    with pytest.raises(SessionNotFoundError):
        await manager.delete_session(first.id, tenant="t1")


async def test_max_sessions_per_user(make_manager: Callable[..., SessionManager]) -> None:
    manager = make_manager(max_sessions_per_user=2)
    a = await manager.create_session("alice")
    await manager.create_session("alice")
    with pytest.raises(QuotaExceededError):
        await manager.create_session("alice")
    await manager.create_session("alice", tenant="other")  # the limit is per (tenant, user)
    await manager.create_session("bob")
    await manager.delete_session(a.id)
    await manager.create_session("alice")
    assert len(await manager.list_sessions("default", "alice")) == 2


async def test_cleanup_expired_removes_exactly_the_expired(
    make_manager: Callable[..., SessionManager], clock: ManualClock
) -> None:
    """Driven by the manager's clock: however slow the machine, nothing expires before ``advance``."""
    manager = make_manager(clock=clock)
    short = [await manager.create_session(u, ttl_s=60) for u in ("alice", "alice", "bob")]
    long = [await manager.create_session(u, ttl_s=3600) for u in ("alice", "carol")]
    touched = await manager.create_session("dave", ttl_s=60)
    await manager.touch(touched.id, ttl_s=3600)
    await manager.save_checkpoint(short[0].id, {"x": 1})
    assert await manager.cleanup_expired() == 0
    clock.advance(61)
    with pytest.raises(SessionNotFoundError):  # expired is invisible even before the sweep
        await manager.get_session(short[0].id)
    assert await manager.cleanup_expired() == 3
    assert await manager.cleanup_expired() == 0
    for s in [*long, touched]:
        assert (await manager.get_session(s.id)).id == s.id
    assert [s.id for s in await manager.list_sessions("default", "alice")] == [long[0].id]
    assert await manager.list_sessions("default", "bob") == []
    again = await manager.create_session("alice", session_id=short[0].id)  # the id is free again
    assert (await manager.resume_session(again.id)).checkpoint is None


async def test_open_for_run(manager: SessionManager) -> None:
    with pytest.raises(SessionNotFoundError):
        await manager.open_for_run("chat-1", tenant="t1", user_id="alice", create_missing=False)
    created = await manager.open_for_run("chat-1", tenant="t1", user_id="alice", template="writer", create_missing=True)
    assert created.id == "chat-1" and created.template == "writer"
    again = await manager.open_for_run("chat-1", tenant="t1", user_id="alice", create_missing=True)
    assert again == created
    both = await asyncio.gather(
        *(manager.open_for_run("chat-2", tenant="t1", user_id="alice", create_missing=True) for _ in range(5))
    )
    assert {s.id for s in both} == {"chat-2"} and len({s.created_at for s in both}) == 1


async def test_survives_a_new_manager(backend: str, make_manager: Callable[..., SessionManager]) -> None:
    first = make_manager()
    s = await first.create_session("alice")
    await first.save_checkpoint(s.id, {"turn": 3})
    await first.aclose()
    second = make_manager()
    assert (await second.resume_session(s.id, user_id="alice")).checkpoint == {"turn": 3}


def corrupt(store: SessionStore, session_id: str, what: str, tenant: str = "default") -> None:
    """Overwrite a stored record with garbage, behind the store's back."""
    key = session_key(tenant, session_id)
    garbage = b"\x00{not json"
    if isinstance(store, MemorySessionStore):
        (store._sessions if what == "session" else store._checkpoints)[key] = garbage
    elif isinstance(store, SqliteSessionStore):
        column = "data" if what == "session" else "checkpoint"
        with sqlite3.connect(store.path) as db:
            db.execute(f"UPDATE ar_sessions SET {column} = ? WHERE id = ?", (garbage, key))
    elif isinstance(store, PostgresSessionStore):
        import psycopg

        column = "data" if what == "session" else "checkpoint"
        with psycopg.connect(store.url, autocommit=True) as db:
            db.execute(f"UPDATE ar_sessions SET {column} = %s WHERE key = %s", (garbage, key))
    else:
        assert isinstance(store, RedisSessionStore)
        url = store.client.connection_pool.connection_kwargs
        client = redis_sync.Redis(host=url["host"], port=url["port"], db=url.get("db", 0))
        client.set(store.key(key, "session" if what == "session" else "ckpt"), garbage, keepttl=True)
        client.close()


async def test_corrupt_data_is_a_clear_error_and_isolated(manager: SessionManager) -> None:
    bad = await manager.create_session("alice")
    good = await manager.create_session("alice")
    await manager.save_checkpoint(good.id, {"ok": True})
    await manager.save_checkpoint(bad.id, {"ok": True})
    corrupt(manager.store, bad.id, "checkpoint")
    with pytest.raises(BackendError, match=bad.id):
        await manager.resume_session(bad.id)
    corrupt(manager.store, bad.id, "session")
    with pytest.raises(BackendError, match=bad.id):
        await manager.get_session(bad.id)
    assert [s.id for s in await manager.list_sessions("default", "alice")] == [good.id]
    assert (await manager.resume_session(good.id)).checkpoint == {"ok": True}
    await manager.create_session("alice")


async def test_ping_and_backend_name(backend: str, manager: SessionManager) -> None:
    await manager.ping()
    assert manager.backend == backend


async def test_record_run_counts_the_whole_conversation(manager: SessionManager) -> None:
    session = await manager.create_session("u1", tenant="t1")
    await manager.record_run(session.id, added=2, tenant="t1")
    grown = await manager.record_run(session.id, added=4, tenant="t1")
    assert grown.message_count == 6
    assert (await manager.record_run(session.id, 3, tenant="t1")).message_count == 3
    with pytest.raises(ValidationError):
        await manager.record_run(session.id, added=-1, tenant="t1")


async def test_checkpoints_go_only_to_live_sessions(
    make_manager: Callable[..., SessionManager], clock: ManualClock
) -> None:
    manager = make_manager(clock=clock)
    session = await manager.create_session("alice", tenant="t1", ttl_s=60)
    await manager.save_checkpoint(session.id, {"early": True}, tenant="t1")
    clock.advance(61)  # expired, not yet swept
    with pytest.raises(SessionNotFoundError):
        await manager.save_checkpoint(session.id, {"late": True}, tenant="t1")
