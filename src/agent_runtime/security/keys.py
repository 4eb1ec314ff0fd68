"""API keys: generation, hashing, the stored record, and the ``KeyService`` that ties them to a store.

A key reads ``ar_<key_id>_<secret>``. The key id is public (it names the record and shows up in
listings); the secret is ``secrets.token_urlsafe(32)`` (256 bits) and is never stored: the store
keeps only ``sha256(key)`` (or ``HMAC-SHA256(pepper, key)`` when a server-side pepper is configured,
so a leaked database cannot even be brute-forced offline).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from agent_runtime.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from agent_runtime.scopes import check_scopes
from agent_runtime.security.record import ApiKey, KeyChanges
from agent_runtime.types import Principal

if TYPE_CHECKING:
    from agent_runtime.security.base import KeyStore

__all__ = ["KEY_PREFIX", "ApiKey", "KeyService", "generate_key", "hash_key", "parse_key"]

KEY_PREFIX = "ar"
_DUMMY_HASH = "0" * 64


def generate_key() -> tuple[str, str]:
    """A fresh ``(key_id, plaintext_key)``; the key id is 16 hex characters, the secret 256 bits."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def parse_key(plaintext: str) -> str:
    """The key id of a plaintext key, or ``AuthenticationError`` when it is not shaped like one of ours."""
    if not plaintext.isascii():  # ours are ASCII; anything else could not even be hashed (lone surrogates)
        raise AuthenticationError("invalid API key")
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 16 or len(parts[2]) < 32:
        raise AuthenticationError("invalid API key")
    try:
        int(parts[1], 16)
    except ValueError:
        raise AuthenticationError("invalid API key") from None
    return parts[1]


def hash_key(plaintext: str, pepper: bytes | None = None) -> str:
    """Hex digest stored in place of the key: HMAC-SHA256 with the pepper, else SHA-256."""
    data = plaintext.encode()
    if pepper:
        return hmac.new(pepper, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


class KeyService:
    """Create, list, revoke and authenticate API keys against any ``KeyStore`` (no CLI or HTTP here).

    Args:
        store: where the records live (memory, SQLite, Redis).
        pepper: optional server secret mixed into the hash (HMAC); changing it invalidates every key.
        cache_s: how long ``authenticate`` may reuse a record it read (0: read the store every time).
            Every request authenticates, so this saves a store round trip per request; the price is
            that a key revoked through *another* process keeps working here for up to ``cache_s``
            (revoking through this service drops the cached record at once).
        cache_size: most records cached; the oldest go first.
        clock: ``time.time`` replacement for tests.
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        pepper: str | bytes | None = None,
        cache_s: float = 0.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if cache_s < 0 or cache_size < 1:
            raise ValidationError("cache_s must not be negative and cache_size must be positive")
        self.store = store
        self._pepper = pepper.encode() if isinstance(pepper, str) else pepper
        self._clock = clock
        self._cache_s = cache_s
        self._cache_size = cache_size
        self._cache: dict[str, tuple[float, ApiKey]] = {}
        self._reading: dict[str, asyncio.Task[ApiKey | None]] = {}
        self._revocations = 0

    async def create_key(
        self,
        tenant: str,
        user: str,
        scopes: Iterable[str],
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        daily_tokens: int | None = None,
        monthly_usd: float | None = None,
        expires_at: float | None = None,
        description: str = "",
    ) -> tuple[str, ApiKey]:
        """Make a key; the plaintext is returned once and cannot be recovered afterwards.

        Raises:
            ValidationError: empty tenant/user, an unknown scope, negative limits or an expiry in the past.
        """
        from agent_runtime._redis import check_key_part

        check_key_part(tenant, "tenant")
        check_key_part(user, "user")
        for name, value in (("rpm", rpm), ("tpm", tpm), ("daily_tokens", daily_tokens), ("monthly_usd", monthly_usd)):
            if value is not None and value < 0:
                raise ValidationError(f"{name} must not be negative")
        now = self._clock()
        if expires_at is not None and expires_at <= now:
            raise ValidationError("expires_at is in the past")
        key_id, plaintext = generate_key()
        record = ApiKey(
            key_id=key_id,
            key_hash=hash_key(plaintext, self._pepper),
            tenant=tenant,
            user=user,
            scopes=check_scopes(scopes),
            created_at=now,
            expires_at=expires_at,
            rpm=rpm,
            tpm=tpm,
            daily_tokens=daily_tokens,
            monthly_usd=monthly_usd,
            description=description,
        )
        await self.store.put(record)
        return plaintext, record

    async def update_key(self, key_id: str, changes: KeyChanges, *, tenant: str | None = None) -> ApiKey:
        """Change a key's scopes, limits, expiry or description (only the fields ``changes`` sets; ``None``
        lifts a limit). Other processes see it once their cached copy expires (``api_key_cache_s``)."""
        record = await self.get_key(key_id, tenant=tenant)
        if record.revoked:
            raise ConflictError(f"API key {key_id!r} is revoked", details={"key_id": key_id})
        update = changes.model_dump(include=changes.model_fields_set)
        if "scopes" in update:
            update["scopes"] = check_scopes(update["scopes"] or ())
        if "description" in update:
            update["description"] = update["description"] or ""
        if update.get("expires_at") is not None and update["expires_at"] <= self._clock():
            raise ValidationError("expires_at is in the past")
        changed = record.model_copy(update=update)
        await self.store.put(changed)
        self._cache.pop(key_id, None)
        self._reading.pop(key_id, None)
        return changed

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (of one tenant when given), oldest first, revoked ones included."""
        return sorted(await self.store.list(tenant), key=lambda k: (k.created_at, k.key_id))

    async def get_key(self, key_id: str, *, tenant: str | None = None) -> ApiKey:
        """One key record; a key of another tenant is reported as not found (no existence leak)."""
        record = await self.store.get(key_id)
        if record is None or (tenant is not None and record.tenant != tenant):
            raise NotFoundError(f"API key {key_id!r} not found")
        return record

    async def revoke_key(self, key_id: str, *, tenant: str | None = None) -> ApiKey:
        """Revoke a key for good; revoking twice keeps the first revocation time."""
        record = await self.get_key(key_id, tenant=tenant)
        if record.revoked:
            return record
        revoked = record.model_copy(update={"revoked_at": self._clock()})
        await self.store.put(revoked)
        self._revocations += 1
        self._cache.pop(key_id, None)
        self._reading.pop(key_id, None)  # a read begun before the revocation must not serve later requests
        return revoked

    async def _lookup(self, key_id: str) -> ApiKey | None:
        """The record, from the cache while it is fresh; unknown ids are never cached (a key created
        in another process must work at once). Concurrent requests of a key whose entry expired share
        one store read, and an entry past half its life is refreshed in the background: under load a
        read through SQLite's thread can take tens of ms, and every request waiting on it would stall."""
        if self._cache_s <= 0:
            return await self.store.get(key_id)
        cached = self._cache.get(key_id)
        age = self._clock() - cached[0] if cached is not None else self._cache_s
        if cached is not None and age < self._cache_s:
            if age >= self._cache_s / 2:  # refresh ahead, so a busy key's requests never wait for it
                self._start_read(key_id)
            return cached[1]
        return await asyncio.shield(self._start_read(key_id))  # one caller going away must not fail others

    def _start_read(self, key_id: str) -> asyncio.Task[ApiKey | None]:
        loop = asyncio.get_running_loop()
        pending = self._reading.get(key_id)
        if pending is None or pending.get_loop() is not loop:
            pending = loop.create_task(self._read(key_id))
            self._reading[key_id] = pending
            pending.add_done_callback(lambda done: self._forget(key_id, done))
        return pending

    def _forget(self, key_id: str, read: asyncio.Task[ApiKey | None]) -> None:
        if self._reading.get(key_id) is read:
            del self._reading[key_id]
        if not read.cancelled():
            read.exception()  # a failed refresh ahead is nobody's to raise: the next request reads again

    async def _read(self, key_id: str) -> ApiKey | None:
        now, revocations = self._clock(), self._revocations
        record = await self.store.get(key_id)
        self._cache.pop(key_id, None)
        if record is not None and revocations == self._revocations:  # else it may predate a revocation
            if len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]
            self._cache[key_id] = (now, record)
        return record

    async def authenticate(self, plaintext: str) -> Principal:
        """The principal of a valid key.

        Raises:
            AuthenticationError: malformed, unknown, wrong secret, revoked or expired key.
        """
        key_id = parse_key(plaintext)
        record = await self._lookup(key_id)
        presented = hash_key(plaintext, self._pepper)
        # Compare even when the id is unknown, so timing does not reveal which ids exist.
        matches = hmac.compare_digest(presented, record.key_hash if record else _DUMMY_HASH)
        if record is None or not matches:
            raise AuthenticationError("invalid API key")
        if record.revoked:
            raise AuthenticationError("API key revoked")
        if record.is_expired(self._clock()):
            raise AuthenticationError("API key expired")
        return record.to_principal()
