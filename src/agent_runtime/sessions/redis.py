"""Redis session store for a fleet of workers, on a plain ``redis-server`` (no modules).

Keys (``ar`` is ``RedisSettings.key_prefix``; ``<key>`` is ``<tenant>/<session id>``, see
``session_key``; every id passes ``check_key_part`` first, so no id can contain ``{``, ``}``, ``*``,
``|``, ``/`` or whitespace and escape its namespace)::

    ar:{<key>}:session         JSON of the Session, expiring at expires_at (PXAT)
    ar:{<key>}:ckpt            JSON checkpoint of save_checkpoint, same expiry
    ar:{<key>}:lock            run lease: random token, SET NX PX, released by compare-and-delete
    ar:{<key>}:lg:*            LangGraph checkpoints of the thread (see checkpoint_redis.py)
    ar:{u|<tenant>|<user>}:sessions   zset key -> expires_at: listing and the per-user limit
    ar:sessions:expiry         zset "<tenant>|<user>|<key>" -> expires_at: what cleanup_expired sweeps

The hash tag keeps everything of one session in one Cluster slot, so the Lua scripts stay
single-slot. Redis expiry removes a dead session's keys by itself; the two sorted sets are the
index that ``pop_expired`` walks to remove the index entries and LangGraph threads that expiry
cannot reach. Each entry is claimed with ``ZREM`` first, so concurrent sweepers count it once.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import NoScriptError

from agent_runtime._redis import make_redis
from agent_runtime.errors import ConflictError, QuotaExceededError
from agent_runtime.sessions._redis_ops import redis_op
from agent_runtime.sessions.base import SessionStore
from agent_runtime.sessions.models import Session, decode_session, encode_session, try_decode_session
from agent_runtime.sessions.retention import DEFAULT_CHECKPOINT_HISTORY
from agent_runtime.settings import RedisSettings

__all__ = ["RedisSessionStore"]

_RESERVE = """
local now = ARGV[2]
local own = redis.call('ZSCORE', KEYS[1], ARGV[1])
if own and tonumber(own) > tonumber(now) then return -1 end
local n = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
if tonumber(ARGV[4]) >= 0 and n >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""

_PUT_CHECKPOINT = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
if ttl > 0 then redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl) else redis.call('SET', KEYS[2], ARGV[1]) end
return 1
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_SWEEP_BATCH = 256


class RedisSessionStore(SessionStore):
    """Sessions on Redis; ``client`` may be shared, otherwise one is made (and closed) from ``url``."""

    name = "redis"

    def __init__(self, url: str | None = None, settings: RedisSettings | None = None, *, client: Any = None) -> None:
        if client is None and url is None:
            raise ValueError("RedisSessionStore needs a url or a client")
        cfg = settings or RedisSettings()
        self._owns_client = client is None
        self.client: Any = client if client is not None else make_redis(str(url), cfg, decode_responses=False)
        self.prefix = cfg.key_prefix
        self._reserve = self.client.register_script(_RESERVE)
        self._put_ckpt = self.client.register_script(_PUT_CHECKPOINT)
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)

    def key(self, session_key: str, part: str) -> str:
        return f"{self.prefix}:{{{session_key}}}:{part}"

    def _user_key(self, tenant: str, user_id: str) -> str:
        return f"{self.prefix}:{{u|{tenant}|{user_id}}}:sessions"

    @property
    def _expiry_key(self) -> str:
        return f"{self.prefix}:sessions:expiry"

    @staticmethod
    def _member(session: Session) -> str:
        return f"{session.tenant}|{session.user_id}|{session.key}"

    async def create(self, session: Session, *, max_per_user: int | None) -> None:
        # One round trip: claim the id, index it for the sweep, take a slot in the owner's index.
        # ZADD NX keeps a stale entry of an expired namesake (the sweep re-checks the live record
        # before deleting, so it is harmless); the slot script refuses an id its owner holds live.
        member, owner_key = self._member(session), self._user_key(session.tenant, session.user_id)
        slot_args = [session.key, repr(session.created_at.timestamp()), repr(session.expires_ts)]
        slot_args.append(str(-1 if max_per_user is None else max_per_user))
        async with redis_op(self.client, "sessions.create"):
            pipe = self.client.pipeline(transaction=False)
            pipe.set(
                self.key(session.key, "session"), encode_session(session), nx=True, pxat=int(session.expires_ts * 1000)
            )
            pipe.zadd(self._expiry_key, {member: session.expires_ts}, nx=True)
            pipe.evalsha(self._reserve.sha, 1, owner_key, *slot_args)
            claimed, indexed, slot = await pipe.execute(raise_on_error=False)
            if isinstance(slot, NoScriptError):  # script cache empty (Redis restarted): load it, once
                slot = await self._reserve(keys=[owner_key], args=slot_args)
            elif isinstance(slot, Exception):
                raise slot
            if not claimed:
                undo = self.client.pipeline(transaction=False)
                if indexed:
                    undo.zrem(self._expiry_key, member)
                if slot == 1:
                    undo.zrem(owner_key, session.key)
                await undo.execute()
                raise ConflictError(f"session id {session.id} is already in use")
            if slot == -1:  # an index entry without a record (record deleted behind our back): repair it
                await self.client.zadd(owner_key, {session.key: session.expires_ts})
            elif slot == 0:
                await self._unlink(session)
                raise QuotaExceededError(f"user already has the maximum of {max_per_user} sessions")

    async def get(self, key: str) -> Session | None:
        async with redis_op(self.client, "sessions.get"):
            raw = await self.client.get(self.key(key, "session"))
        return None if raw is None else decode_session(key, raw)

    async def get_with_checkpoint(self, key: str) -> tuple[Session | None, bytes | None]:
        async with redis_op(self.client, "sessions.resume"):
            raw, ckpt = await self.client.mget(self.key(key, "session"), self.key(key, "ckpt"))
        return (None if raw is None else decode_session(key, raw)), ckpt

    async def update(self, session: Session) -> bool:
        expires_ms = int(session.expires_ts * 1000)
        async with redis_op(self.client, "sessions.update"):
            pipe = self.client.pipeline(transaction=False)
            pipe.set(self.key(session.key, "session"), encode_session(session), xx=True, pxat=expires_ms)
            pipe.pexpireat(self.key(session.key, "ckpt"), expires_ms)
            pipe.zadd(self._user_key(session.tenant, session.user_id), {session.key: session.expires_ts}, xx=True)
            pipe.zadd(self._expiry_key, {self._member(session): session.expires_ts}, xx=True)
            stored, *_ = await pipe.execute()
        return bool(stored)

    async def put_checkpoint(self, key: str, data: bytes) -> bool:
        keys = [self.key(key, "session"), self.key(key, "ckpt")]
        async with redis_op(self.client, "sessions.save_checkpoint"):
            result = bool(await self._put_ckpt(keys=keys, args=[data]))
        return result

    async def _unlink(self, session: Session) -> int:
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(*(self.key(session.key, part) for part in ("session", "ckpt", "lock")))
        pipe.zrem(self._user_key(session.tenant, session.user_id), session.key)
        pipe.zrem(self._expiry_key, self._member(session))
        deleted, *_ = await pipe.execute()
        return int(deleted)

    async def delete(self, session: Session) -> bool:
        async with redis_op(self.client, "sessions.delete"):
            result = await self._unlink(session) > 0
        return result

    async def list_for_user(self, tenant: str, user_id: str, now: float) -> list[Session]:
        async with redis_op(self.client, "sessions.list"):
            ids = await self.client.zrangebyscore(self._user_key(tenant, user_id), f"({now!r}", "+inf")
            pipe = self.client.pipeline(transaction=False)
            for key in ids:
                pipe.get(self.key(key.decode(), "session"))
            raws = await pipe.execute() if ids else []
        out = [s for key, raw in zip(ids, raws, strict=True) if raw and (s := try_decode_session(key.decode(), raw))]
        return sorted(out, key=lambda s: s.created_at, reverse=True)

    async def pop_expired(self, now: float) -> list[str]:
        removed: list[str] = []
        async with redis_op(self.client, "sessions.cleanup_expired"):
            while True:
                members = await self.client.zrangebyscore(
                    self._expiry_key, "-inf", repr(now), start=0, num=_SWEEP_BATCH
                )
                if not members:
                    break
                pipe = self.client.pipeline(transaction=False)
                for member in members:
                    pipe.zrem(self._expiry_key, member)
                claimed = [m.decode() for m, won in zip(members, await pipe.execute(), strict=True) if won]
                removed.extend(await self._sweep(claimed, now))
        return removed

    async def _sweep(self, members: list[str], now: float) -> list[str]:
        """Delete the claimed sessions unless a ``touch`` raced the sweep and they are alive again."""
        owners = [m.split("|") for m in members]
        pipe = self.client.pipeline(transaction=False)
        for _, _, key in owners:
            pipe.get(self.key(key, "session"))
        raws = await pipe.execute()
        pipe = self.client.pipeline(transaction=False)
        removed: list[str] = []
        for (tenant, user_id, key), raw in zip(owners, raws, strict=True):
            current = try_decode_session(key, raw) if raw is not None else None
            if current is not None and not current.is_expired(now):
                pipe.zadd(self._expiry_key, {self._member(current): current.expires_ts})
                continue
            pipe.delete(*(self.key(key, part) for part in ("session", "ckpt", "lock")))
            pipe.zrem(self._user_key(tenant, user_id), key)
            removed.append(key)
        await pipe.execute()
        return removed

    async def acquire_lease(self, key: str, token: str, lease_s: float) -> bool:
        async with redis_op(self.client, "sessions.lock"):
            result = bool(await self.client.set(self.key(key, "lock"), token, nx=True, px=int(lease_s * 1000)))
        return result

    async def lease_held(self, key: str) -> bool:
        async with redis_op(self.client, "sessions.lock_held"):
            result = bool(await self.client.exists(self.key(key, "lock")))
        return result

    async def renew_lease(self, key: str, token: str, lease_s: float) -> bool:
        async with redis_op(self.client, "sessions.lock_renew"):
            result = bool(await self._renew(keys=[self.key(key, "lock")], args=[token, int(lease_s * 1000)]))
        return result

    async def release_lease(self, key: str, token: str) -> None:
        async with redis_op(self.client, "sessions.unlock"):
            await self._release(keys=[self.key(key, "lock")], args=[token])

    def make_checkpointer(self, history: int | None = DEFAULT_CHECKPOINT_HISTORY) -> Any:
        from agent_runtime.sessions.checkpoint_redis import RedisCheckpointSaver

        return RedisCheckpointSaver(self.client, prefix=self.prefix, history=history)

    async def ping(self) -> None:
        async with redis_op(self.client, "sessions.ping"):
            await self.client.ping()

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
