"""Key lifecycle on every key store backend: create, authenticate, list, revoke, expire; hashes only at rest."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import redis

from agent_runtime.errors import AuthenticationError, NotFoundError, ValidationError
from agent_runtime.security.base import KeyStore
from agent_runtime.security.keys import ApiKey, KeyService, generate_key, hash_key, parse_key
from agent_runtime.security.memory import MemoryKeyStore
from agent_runtime.security.redis import RedisKeyStore
from agent_runtime.security.sqlite import SQLiteKeyStore


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_generated_keys_have_our_shape_and_entropy() -> None:
    key_id, plaintext = generate_key()
    assert plaintext.startswith(f"ar_{key_id}_")
    assert parse_key(plaintext) == key_id
    assert len(plaintext.split("_", 2)[2]) >= 43  # 32 random bytes, base64url
    assert len({generate_key()[1] for _ in range(200)}) == 200


@pytest.mark.parametrize("bad", ["", "ar_", "ar_zzzzzzzzzzzzzzzz_" + "a" * 43, "sk-abc", "ar_0123_" + "a" * 43])
def test_malformed_keys_are_rejected_before_any_lookup(bad: str) -> None:
    with pytest.raises(AuthenticationError):
        parse_key(bad)


def test_pepper_changes_the_hash() -> None:
    assert hash_key("ar_x") != hash_key("ar_x", b"pepper")
    assert len(hash_key("ar_x", b"pepper")) == 64


async def test_create_and_authenticate(keystore: KeyStore) -> None:
    service = KeyService(keystore)
    plaintext, record = await service.create_key(
        "acme", "alice", ["agents:run:writer"], rpm=10, tpm=1000, daily_tokens=5000, monthly_usd=2.5
    )
    principal = await service.authenticate(plaintext)
    assert (principal.tenant, principal.user, principal.key_id) == ("acme", "alice", record.key_id)
    assert principal.scopes == frozenset({"agents:run:writer"})
    assert (principal.rpm, principal.tpm, principal.daily_tokens, principal.monthly_usd) == (10, 1000, 5000, 2.5)
    assert await keystore.get(record.key_id) == record


async def test_wrong_secret_unknown_id_and_garbage_are_rejected(keystore: KeyStore) -> None:
    service = KeyService(keystore)
    plaintext, record = await service.create_key("acme", "alice", ["*"])
    wrong_secret = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    unknown_id = f"ar_{'f' * 16}_{plaintext.split('_', 2)[2]}"
    for bad in (wrong_secret, unknown_id, "ar_" + record.key_id, "Bearer " + plaintext, plaintext + "x"):
        with pytest.raises(AuthenticationError):
            await service.authenticate(bad)


async def test_revoked_key_is_rejected_and_revocation_is_idempotent(keystore: KeyStore) -> None:
    clock = Clock()
    service = KeyService(keystore, clock=clock)
    plaintext, record = await service.create_key("acme", "alice", ["*"])
    revoked = await service.revoke_key(record.key_id)
    assert revoked.revoked_at == clock.now
    clock.now += 10
    assert (await service.revoke_key(record.key_id)).revoked_at == revoked.revoked_at
    with pytest.raises(AuthenticationError, match="revoked"):
        await service.authenticate(plaintext)
    assert [k.revoked for k in await service.list_keys("acme")] == [True]


async def test_cached_records_and_revocation(keystore: KeyStore) -> None:
    """With a cache, a revocation through this service applies at once, one through another process
    (another service on the same store) within ``cache_s``; new keys work at once everywhere."""
    clock = Clock()
    here = KeyService(keystore, cache_s=5, clock=clock)
    elsewhere = KeyService(keystore, clock=clock)  # the CLI, or another worker
    first, first_record = await here.create_key("acme", "alice", ["*"])
    assert (await here.authenticate(first)).user == "alice"
    await elsewhere.revoke_key(first_record.key_id)
    assert (await here.authenticate(first)).user == "alice"  # the cached record, until cache_s passes
    clock.now += 5
    with pytest.raises(AuthenticationError, match="revoked"):
        await here.authenticate(first)

    with pytest.raises(AuthenticationError):  # an unknown id is not cached: once created, it works
        await here.authenticate("ar_0123456789abcdef_" + "x" * 43)
    second, second_record = await elsewhere.create_key("acme", "bob", ["*"])
    assert (await here.authenticate(second)).user == "bob"
    await here.revoke_key(second_record.key_id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await here.authenticate(second)
    with pytest.raises(AuthenticationError):  # the cached record still needs the right secret
        await here.authenticate(second[:-4] + "xxxx")


class CountingStore(MemoryKeyStore):
    """A real memory store that counts its reads."""

    reads = 0

    async def get(self, key_id: str) -> ApiKey | None:
        self.reads += 1
        await asyncio.sleep(0.01)  # a round trip, so concurrent requests overlap it
        return await super().get(key_id)


async def test_concurrent_requests_share_one_read_of_an_expired_entry() -> None:
    clock, store = Clock(), CountingStore()
    service = KeyService(store, cache_s=5, clock=clock)
    plaintext, _ = await service.create_key("acme", "alice", ["*"])
    principals = await asyncio.gather(*(service.authenticate(plaintext) for _ in range(20)))
    assert {p.user for p in principals} == {"alice"} and store.reads == 1
    clock.now += 5
    await asyncio.gather(*(service.authenticate(plaintext) for _ in range(20)))
    assert store.reads == 2


async def test_an_entry_past_half_its_life_is_refreshed_in_the_background() -> None:
    clock, store = Clock(), CountingStore()
    service = KeyService(store, cache_s=5, clock=clock)
    plaintext, record = await service.create_key("acme", "alice", ["*"])
    await service.authenticate(plaintext)
    await KeyService(store).revoke_key(record.key_id)  # revoked elsewhere
    clock.now += 3
    assert (await service.authenticate(plaintext)).user == "alice"  # served at once; a refresh starts
    assert store.reads == 2
    await asyncio.sleep(0.05)  # the refresh lands
    with pytest.raises(AuthenticationError, match="revoked"):  # seen before cache_s ran out
        await service.authenticate(plaintext)


class FirstReadSlowStore(MemoryKeyStore):
    """A real memory store whose first read is slow (still in flight when a revocation lands)."""

    slow = True

    async def get(self, key_id: str) -> ApiKey | None:
        record = await super().get(key_id)
        if self.slow:
            self.slow = False
            await asyncio.sleep(0.1)
        return record


async def test_a_read_begun_before_a_revocation_serves_no_later_request() -> None:
    clock, store = Clock(), FirstReadSlowStore()
    service = KeyService(store, cache_s=5, clock=clock)
    plaintext, record = await service.create_key("acme", "alice", ["*"])
    early = asyncio.create_task(service.authenticate(plaintext))  # its read is in flight
    await asyncio.sleep(0.01)
    await service.revoke_key(record.key_id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await service.authenticate(plaintext)
    assert (await early).user == "alice"  # it began before the revocation
    with pytest.raises(AuthenticationError, match="revoked"):  # and cached nothing stale
        await service.authenticate(plaintext)


async def test_key_cache_is_bounded(keystore: KeyStore) -> None:
    clock = Clock()
    service = KeyService(keystore, cache_s=60, cache_size=3, clock=clock)
    keys = [(await service.create_key("acme", f"u{i}", ["*"])) for i in range(5)]
    for plaintext, _ in keys:
        await service.authenticate(plaintext)
    await KeyService(keystore).revoke_key(keys[0][1].key_id)  # evicted first, so read again: revoked
    with pytest.raises(AuthenticationError, match="revoked"):
        await service.authenticate(keys[0][0])
    with pytest.raises(ValidationError):
        KeyService(keystore, cache_s=-1)


async def test_expired_key_is_rejected(keystore: KeyStore) -> None:
    clock = Clock()
    service = KeyService(keystore, clock=clock)
    plaintext, _ = await service.create_key("acme", "alice", ["*"], expires_at=clock.now + 60)
    assert (await service.authenticate(plaintext)).user == "alice"
    clock.now += 61
    with pytest.raises(AuthenticationError, match="expired"):
        await service.authenticate(plaintext)


async def test_list_by_tenant_and_no_cross_tenant_access(keystore: KeyStore) -> None:
    clock = Clock()
    service = KeyService(keystore, clock=clock)
    _, a1 = await service.create_key("tenant-a", "u1", ["*"])
    clock.now += 1
    _, a2 = await service.create_key("tenant-a", "u2", ["*"])
    _, b1 = await service.create_key("tenant-b", "u1", ["*"])
    assert [k.key_id for k in await service.list_keys("tenant-a")] == [a1.key_id, a2.key_id]
    assert {k.key_id for k in await service.list_keys()} == {a1.key_id, a2.key_id, b1.key_id}
    assert await service.list_keys("nobody") == []
    with pytest.raises(NotFoundError):
        await service.get_key(a1.key_id, tenant="tenant-b")
    with pytest.raises(NotFoundError):
        await service.revoke_key(a1.key_id, tenant="tenant-b")
    assert not (await service.get_key(a1.key_id)).revoked
    with pytest.raises(NotFoundError):
        await service.revoke_key("0" * 16)


async def test_bad_create_arguments(keystore: KeyStore) -> None:
    clock = Clock()
    service = KeyService(keystore, clock=clock)
    for kwargs in ({"rpm": -1}, {"monthly_usd": -0.5}, {"expires_at": clock.now - 1}):
        with pytest.raises(ValidationError):
            await service.create_key("acme", "alice", ["*"], **kwargs)  # type: ignore[arg-type]
    for tenant, user in (("", "u"), ("a b", "u"), ("t", "x{y}"), ("t", "u*")):
        with pytest.raises(ValidationError):
            await service.create_key(tenant, user, ["*"])
    assert await service.list_keys() == []


async def test_public_dict_has_no_hash(keystore: KeyStore) -> None:
    _, record = await KeyService(keystore).create_key("acme", "alice", ["usage", "sessions"])
    data = record.public_dict()
    assert "key_hash" not in data and data["scopes"] == ["sessions", "usage"]
    assert record.key_hash not in repr(record)


async def test_sqlite_database_holds_no_plaintext_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite3"
    store = SQLiteKeyStore(path)
    service = KeyService(store)
    keys = [(await service.create_key("acme", f"u{i}", ["*"]))[0] for i in range(5)]
    await store.aclose()
    blobs = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    with sqlite3.connect(path) as conn:
        dump = "\n".join(conn.iterdump())
    for plaintext in keys:
        secret = plaintext.split("_", 2)[2]
        assert secret.encode() not in blobs and secret not in dump
        assert hash_key(plaintext) in dump
    # and the database still authenticates after a reopen (survives a restart)
    reopened = SQLiteKeyStore(path)
    assert (await KeyService(reopened).authenticate(keys[0])).user == "u0"
    await reopened.aclose()


@pytest.mark.redis
async def test_redis_holds_no_plaintext_key(redis_url: str) -> None:
    store = RedisKeyStore(redis_url)
    service = KeyService(store, pepper="server-side-pepper")
    keys = [(await service.create_key("acme", f"u{i}", ["*"]))[0] for i in range(5)]
    await store.aclose()
    client = redis.Redis.from_url(redis_url)
    try:
        everything = b""
        for name in client.scan_iter("*"):
            kind = client.type(name)
            if kind == b"string":
                everything += client.get(name) or b""
            elif kind == b"set":
                everything += b"".join(client.smembers(name))
            everything += name
    finally:
        client.close()
    assert everything
    for plaintext in keys:
        assert plaintext.split("_", 2)[2].encode() not in everything
        assert hash_key(plaintext, b"server-side-pepper").encode() in everything


async def test_memory_store_records_are_hash_only() -> None:
    store = MemoryKeyStore()
    plaintext, record = await KeyService(store).create_key("acme", "alice", ["*"])
    assert plaintext.split("_", 2)[2] not in record.model_dump_json()


@pytest.mark.redis
async def test_redis_corrupt_record_is_a_backend_error(redis_url: str) -> None:
    from agent_runtime.errors import BackendError

    store = RedisKeyStore(redis_url)
    client = redis.Redis.from_url(redis_url)
    client.set("ar:key:0123456789abcdef", b"{not json")
    client.close()
    with pytest.raises(BackendError):
        await store.get("0123456789abcdef")
    assert await store.get("bad id{}") is None
    await store.aclose()


def test_api_key_is_frozen() -> None:
    record = ApiKey(key_id="0" * 16, key_hash="h", tenant="t", user="u")
    with pytest.raises(ValueError):
        record.tenant = "other"  # type: ignore[misc]
