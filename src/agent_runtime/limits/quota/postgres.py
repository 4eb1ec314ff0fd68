"""PostgreSQL quota ledger: each reserve / settle / adjust is one short transaction, exact across a fleet.

The bucket rows (``ar_quota_spent``) are the locks: a call first makes sure its buckets exist, then
locks them with ``SELECT ... FOR UPDATE`` in key order (two calls on overlapping buckets never
deadlock), so a reserve reads spent and live reservations and inserts its own while no other worker
can change that bucket. Settles and adjusts record their op id in ``ar_quota_applied`` in the same
transaction (``INSERT ... ON CONFLICT DO NOTHING``): a replayed journal entry changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from agent_runtime._postgres import PgClient
from agent_runtime.limits.quota.base import Bucket, QuotaLedger
from agent_runtime.settings import PostgresSettings

__all__ = ["PostgresQuotaLedger"]

_ENSURE = (
    "INSERT INTO ar_quota_spent (bucket, spent, window_end) "
    "SELECT b, 0, e FROM unnest(%s::text[], %s::float8[]) AS t(b, e) ON CONFLICT (bucket) DO NOTHING"
)
_LOCK = "SELECT bucket, spent FROM ar_quota_spent WHERE bucket = ANY(%s) ORDER BY bucket FOR UPDATE"
_RESERVED = (
    "SELECT bucket, coalesce(sum(amount), 0) FROM ar_quota_reservations "
    "WHERE bucket = ANY(%s) AND rid != %s AND expires_at > %s GROUP BY bucket"
)
_ADD = "UPDATE ar_quota_spent SET spent = spent + %s WHERE bucket = %s"
_KEEP_CLOSED_S = 31 * 86_400
_KEEP_APPLIED_S = 62 * 86_400


class PostgresQuotaLedger(QuotaLedger):
    """Spend per bucket in ``ar_quota_spent``, live reservations in ``ar_quota_reservations``."""

    def __init__(
        self, url: str, settings: PostgresSettings | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock=clock)
        self._db = PgClient(url, settings, name="quotas")
        self._settles = 0

    @staticmethod
    async def _lock(conn: Any, buckets: Sequence[Bucket]) -> dict[str, int]:
        keys = [b.key for b in buckets]
        await conn.execute(_ENSURE, (keys, [b.window_end for b in buckets]))
        cur = await conn.execute(_LOCK, (keys,))
        return {bucket: int(spent) for bucket, spent in await cur.fetchall()}

    @staticmethod
    async def _first_time(conn: Any, op_id: str | None, now: float) -> bool:
        if op_id is None:
            return True
        sql = "INSERT INTO ar_quota_applied (op_id, applied_at) VALUES (%s, %s) ON CONFLICT (op_id) DO NOTHING"
        cur = await conn.execute(sql, (op_id, now))
        return bool(cur.rowcount == 1)

    async def _reserve(
        self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int], ttl_s: float
    ) -> tuple[int, bool] | None:
        now = self._clock()
        async with self._db.transaction("quota.reserve") as conn:
            spent = await self._lock(conn, buckets)
            cur = await conn.execute(_RESERVED, ([b.key for b in buckets], rid, now))
            reserved = {bucket: int(total) for bucket, total in await cur.fetchall()}
            for i, (b, amount) in enumerate(zip(buckets, amounts, strict=True)):
                used = spent.get(b.key, 0)
                if used + reserved.get(b.key, 0) + amount > b.limit:
                    return i, used + amount <= b.limit
            await conn.execute(
                "DELETE FROM ar_quota_reservations WHERE bucket = ANY(%s) AND expires_at <= %s",
                ([b.key for b in buckets], now),
            )
            await conn.cursor().executemany(
                "INSERT INTO ar_quota_reservations (bucket, rid, amount, expires_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (bucket, rid) DO UPDATE SET amount = excluded.amount, expires_at = excluded.expires_at",
                [(b.key, rid, amount, now + ttl_s) for b, amount in zip(buckets, amounts, strict=True)],
            )
        return None

    async def _settle(self, rid: str, buckets: Sequence[Bucket], amounts: Sequence[int], op_id: str | None) -> None:
        now = self._clock()
        async with self._db.transaction("quota.settle") as conn:
            if not await self._first_time(conn, op_id, now):
                return
            await self._lock(conn, buckets)
            keys = [b.key for b in buckets]
            await conn.execute("DELETE FROM ar_quota_reservations WHERE bucket = ANY(%s) AND rid = %s", (keys, rid))
            await conn.cursor().executemany(_ADD, [(amount, b.key) for b, amount in zip(buckets, amounts, strict=True)])
        self._settles += 1
        if self._settles % 1000 == 1:  # now and then, not on every settle: forget closed windows
            await self._expire_old(now)

    async def _expire_old(self, now: float) -> None:
        async with self._db.transaction("quota.expire") as conn:
            await conn.execute("DELETE FROM ar_quota_spent WHERE window_end < %s", (now - _KEEP_CLOSED_S,))
            await conn.execute("DELETE FROM ar_quota_applied WHERE applied_at < %s", (now - _KEEP_APPLIED_S,))
            await conn.execute("DELETE FROM ar_quota_reservations WHERE expires_at <= %s", (now,))

    async def _adjust(self, buckets: Sequence[Bucket], amounts: Sequence[int], op_id: str | None) -> None:
        now = self._clock()
        async with self._db.transaction("quota.adjust") as conn:
            if not await self._first_time(conn, op_id, now):
                return
            await self._lock(conn, buckets)
            await conn.cursor().executemany(_ADD, [(amount, b.key) for b, amount in zip(buckets, amounts, strict=True)])

    async def _status(self, buckets: Sequence[Bucket]) -> list[tuple[int, int]]:
        keys = [b.key for b in buckets]
        sql = (
            "SELECT k, (SELECT spent FROM ar_quota_spent WHERE bucket = k), "
            "(SELECT sum(amount) FROM ar_quota_reservations WHERE bucket = k AND expires_at > %s) "
            "FROM unnest(%s::text[]) AS t(k)"
        )
        rows = await self._db.fetch("quota.status", sql, (self._clock(), keys))
        found = {key: (int(spent or 0), int(reserved or 0)) for key, spent, reserved in rows}
        return [found[key] for key in keys]

    async def ping(self) -> None:
        await self._db.ping("quota.ping")

    async def aclose(self) -> None:
        await self._db.aclose()
