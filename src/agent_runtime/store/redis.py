"""A LangGraph ``BaseStore`` on plain Redis (no RediSearch / RedisJSON modules needed).

Layout under ``<key_prefix>:store``:

- ``:ns`` a sorted set of every namespace with items, as ``"a.b.c."`` (labels joined and ended by a
  dot, all scores 0), so a namespace prefix is one ``ZRANGEBYLEX`` over whole labels;
- ``:items:<a.b.c>`` a hash, item key -> ``{"value", "updated_at"}`` as JSON;
- ``:created:<a.b.c>`` a hash, item key -> creation time (kept across updates with ``HSETNX``);
- ``:updated:<a.b.c>`` a hash, item key -> last update time (what search orders by).

A put is one MULTI transaction; a delete is one script that also drops the namespace from ``:ns``
when it emptied it, so the namespace index never lags behind the items. Search walks the namespaces
under the prefix (bounded for a tenant by its item limit) collecting only (update time, key) of the
matches: without a filter from the small ``:updated`` hashes, with one by ``HSCAN`` over the values
in chunks of ``SCAN_CHUNK``, so memory stays bounded whatever the values weigh; only the requested
page's values are then read. No TTLs and no semantic index: such puts and queries are refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)

from agent_runtime._redis import make_redis, redis_errors
from agent_runtime.settings import RedisSettings
from agent_runtime.store.base import matches_filter, namespace_text

__all__ = ["RedisStore"]

SCAN_CHUNK = 200
_DELETE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', KEYS[3], ARGV[2]) end
return 1
"""


def _member(namespace: tuple[str, ...]) -> str:
    return namespace_text(namespace) + "."


def _namespace(member: str) -> tuple[str, ...]:
    return tuple(member[:-1].split("."))


class RedisStore(BaseStore):
    """Long-term memory shared by every worker on one Redis server."""

    supports_ttl = False

    def __init__(self, url: str, settings: RedisSettings | None = None) -> None:
        settings = settings or RedisSettings()
        self._redis = make_redis(url, settings)
        self._prefix = f"{settings.key_prefix}:store"
        self._delete = self._redis.register_script(_DELETE)

    def _keys(self, namespace: tuple[str, ...]) -> tuple[str, str]:
        text = namespace_text(namespace)
        return f"{self._prefix}:items:{text}", f"{self._prefix}:created:{text}"

    def _updated_key(self, namespace: tuple[str, ...]) -> str:
        return f"{self._prefix}:updated:{namespace_text(namespace)}"

    # -- the BaseStore interface ---------------------------------------------------------------
    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        results: list[Result] = []
        async with redis_errors("store"):
            for op in ops:
                validate_op_namespace(op)
                results.append(await self._one(op))
        return results

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        raise NotImplementedError("RedisStore is async only: use abatch / aget / aput / asearch")

    async def _one(self, op: Op) -> Result:
        if isinstance(op, GetOp):
            return await self._get(op.namespace, op.key)
        if isinstance(op, PutOp):
            if op.value is None:
                await self._delete_item(op.namespace, op.key)
            else:
                await self._put(op.namespace, op.key, dict(op.value))
            return None
        if isinstance(op, SearchOp):
            if op.query:
                raise NotImplementedError("RedisStore has no semantic index: search without a query")
            return await self._search(op)
        if isinstance(op, ListNamespacesOp):
            return await self._list(op)
        raise TypeError(f"unknown store operation {type(op).__name__}")

    # -- operations ----------------------------------------------------------------------------
    async def _get(self, namespace: tuple[str, ...], key: str) -> Item | None:
        items, created = self._keys(namespace)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(items, key).hget(created, key)
            raw, created_at = await pipe.execute()
        return None if raw is None else _item(namespace, key, raw, created_at)

    async def _put(self, namespace: tuple[str, ...], key: str, value: dict[str, Any]) -> None:
        items, created = self._keys(namespace)
        now = datetime.now(UTC).isoformat()
        body = json.dumps({"value": value, "updated_at": now}, default=str)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(items, key, body).hsetnx(created, key, now).hset(self._updated_key(namespace), key, now)
            pipe.zadd(f"{self._prefix}:ns", {_member(namespace): 0})
            await pipe.execute()

    async def _delete_item(self, namespace: tuple[str, ...], key: str) -> None:
        items, created = self._keys(namespace)
        keys = [items, created, f"{self._prefix}:ns", self._updated_key(namespace)]
        await self._delete(keys=keys, args=[key, _member(namespace)])

    async def _namespaces(self, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        low, high = ("[" + _member(prefix), "(" + namespace_text(prefix) + "/") if prefix else ("-", "+")
        members = await self._redis.zrangebylex(f"{self._prefix}:ns", low, high)
        return [_namespace(m) for m in members]

    async def _search(self, op: SearchOp) -> list[SearchItem]:
        matches: list[tuple[str, tuple[str, ...], str]] = []  # (updated_at, namespace, key), no values
        for namespace in await self._namespaces(op.namespace_prefix):
            if op.filter:
                matches += [(u, namespace, k) async for u, k in self._matching(namespace, op.filter)]
            else:
                updated = await self._redis.hgetall(self._updated_key(namespace))
                matches += [(u, namespace, k) for k, u in updated.items()]
        matches.sort(reverse=True)
        chosen = matches[op.offset : op.offset + op.limit]
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, namespace, key in chosen:
                items, created = self._keys(namespace)
                pipe.hget(items, key).hget(created, key)
            read = await pipe.execute()
        found = zip(chosen, read[::2], read[1::2], strict=True)
        return [  # an item deleted meanwhile is left out
            _search_item(_item(ns, key, body, c)) for (_, ns, key), body, c in found if body is not None
        ]

    async def _matching(self, namespace: tuple[str, ...], filter: dict[str, Any]) -> AsyncIterator[tuple[str, str]]:
        """(updated_at, key) of the namespace's items whose value passes ``filter``, read in chunks."""
        cursor = 0
        while True:
            cursor, chunk = await self._redis.hscan(self._keys(namespace)[0], cursor, count=SCAN_CHUNK)
            for key, body in chunk.items():
                data = json.loads(body)
                if matches_filter(data["value"], filter):
                    yield data["updated_at"], key
            if cursor == 0:
                return

    async def _list(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        conditions = op.match_conditions or ()
        literal = next((c.path for c in conditions if c.match_type == "prefix" and "*" not in c.path), ())
        namespaces = [ns for ns in await self._namespaces(literal) if all(_matches(c, ns) for c in conditions)]
        if op.max_depth is not None:
            namespaces = [ns[: op.max_depth] for ns in namespaces]
        return sorted(set(namespaces))[op.offset : op.offset + op.limit]

    async def acount_items(self, prefix: tuple[str, ...]) -> int:
        async with redis_errors("store count"):
            namespaces = await self._namespaces(prefix)
            async with self._redis.pipeline(transaction=False) as pipe:
                for namespace in namespaces:
                    pipe.hlen(self._keys(namespace)[0])
                counts = await pipe.execute()
        return int(sum(counts))

    async def aclose(self) -> None:
        await asyncio.shield(self._redis.aclose())


def _item(namespace: tuple[str, ...], key: str, body: str, created_at: str | None) -> Item:
    data = json.loads(body)
    updated = datetime.fromisoformat(data["updated_at"])
    created = datetime.fromisoformat(created_at) if created_at else updated
    return Item(value=data["value"], key=key, namespace=namespace, created_at=created, updated_at=updated)


def _search_item(item: Item) -> SearchItem:
    return SearchItem(item.namespace, item.key, item.value, item.created_at, item.updated_at)


def _matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """LangGraph's prefix / suffix match, ``*`` matching any one label."""
    path = condition.path
    if len(namespace) < len(path):
        return False
    labels = namespace[: len(path)] if condition.match_type == "prefix" else namespace[len(namespace) - len(path) :]
    return all(p == "*" or p == label for p, label in zip(path, labels, strict=True))
