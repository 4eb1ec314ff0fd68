"""Tenant confinement: a ``BaseStore`` view that puts every namespace under its caller's tenant.

A client (an HTTP caller or an agent's tools) names namespaces of its own; the view prepends
``t:<tenant>`` and, unless the caller is a tenant admin, ``<user>``, and strips them again from what
comes back. Whatever a client asks for, every key it can reach starts with its own labels, so no
namespace, prefix or wildcard reaches another tenant's (or user's) items. An admin's namespaces
start one level higher: its first label is a user (``["alice", "notes"]`` is what alice sees as
``["notes"]``).

Tenant and user labels are percent-encoded (``.`` too), so neither can split into two labels nor
act as a wildcard. The view also enforces the per-tenant limits of ``StoreSettings``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import quote

from langgraph.store.base import (
    NOT_PROVIDED,
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    NamespacePath,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from agent_runtime.errors import (
    InvalidNamespaceError,
    ItemTooLargeError,
    StoreFullError,
    ValidationError,
)
from agent_runtime.settings import StoreSettings
from agent_runtime.store.base import CountingStore, filter_problem, value_size

__all__ = ["StoreScope", "TenantStore", "check_namespace"]

_SAFE = "@+:=!$,;~"  # kept as they are; everything else (dots, wildcards, '%') is percent-encoded


def _label(value: str) -> str:
    return quote(value, safe=_SAFE).replace(".", "%2E")


@dataclass(frozen=True)
class StoreScope:
    """Whose items a view reaches: one tenant's, and one user's unless ``user`` is ``None`` (admin)."""

    tenant: str
    user: str | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        tenant = ("t:" + _label(self.tenant),)
        return tenant if self.user is None else (*tenant, _label(self.user))


def check_namespace(namespace: Sequence[str], limits: StoreSettings, *, what: str = "namespace") -> tuple[str, ...]:
    """The namespace as a tuple, or ``InvalidNamespaceError`` (empty label, a dot, NUL, too deep/long)."""
    if isinstance(namespace, str) or not all(isinstance(label, str) for label in namespace):
        raise InvalidNamespaceError(f"{what} must be a list of strings")
    labels = tuple(namespace)
    if len(labels) > limits.max_namespace_depth:
        raise InvalidNamespaceError(f"{what} has {len(labels)} labels; at most {limits.max_namespace_depth}")
    for label in labels:
        if not label:
            raise InvalidNamespaceError(f"{what} {list(labels)} has an empty label")
        if "." in label or "\x00" in label:
            raise InvalidNamespaceError(f"{what} label {label!r} must not contain '.' or NUL")
        if len(label) > limits.max_label_chars:
            raise InvalidNamespaceError(f"{what} label is longer than {limits.max_label_chars} characters")
    return labels


class TenantStore(BaseStore):
    """The part of ``base`` that belongs to ``scope``, with the tenant's size and count limits."""

    def __init__(self, base: BaseStore, scope: StoreScope, limits: StoreSettings | None = None) -> None:
        self.base = base
        self.scope = scope
        self.limits = limits or StoreSettings()
        self._labels = scope.labels
        self.supports_ttl = base.supports_ttl

    @property
    def has_index(self) -> bool:
        return bool(getattr(self.base, "index_config", None))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        inner = [self._inward(op) for op in ops]
        for op in inner:
            if isinstance(op, PutOp) and op.value is not None:
                await self._check_room(op)
        return [self._outward(result) for result in await self.base.abatch(inner)]

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        raise NotImplementedError("the tenant store is async only: use aget / aput / asearch / alist_namespaces")

    # BaseStore's own helpers check labels with LangGraph's errors before ``abatch`` sees them; these
    # build the ops directly, so every bad input gets this runtime's typed error instead.
    async def aget(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        return cast("Item | None", (await self.abatch([GetOp(namespace, key, refresh_ttl is not False)]))[0])

    async def asearch(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        op = SearchOp(namespace_prefix, filter, limit, offset, query, refresh_ttl is not False)
        return cast("list[SearchItem]", (await self.abatch([op]))[0])

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        await self.abatch([PutOp(namespace, key, value, index, ttl=None if isinstance(ttl, NotProvided) else ttl)])

    async def adelete(self, namespace: tuple[str, ...], key: str) -> None:
        await self.abatch([PutOp(namespace, key, None)])

    async def alist_namespaces(
        self,
        *,
        prefix: NamespacePath | None = None,
        suffix: NamespacePath | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        conditions = [MatchCondition("prefix", prefix)] if prefix else []
        conditions += [MatchCondition("suffix", suffix)] if suffix else []
        op = ListNamespacesOp(tuple(conditions), max_depth, limit, offset)
        return cast("list[tuple[str, ...]]", (await self.abatch([op]))[0])

    # -- requests in ---------------------------------------------------------------------------
    def _inward(self, op: Op) -> Op:
        if isinstance(op, GetOp):
            return GetOp(self._inside(op.namespace, empty=False), self._key(op.key), op.refresh_ttl)
        if isinstance(op, PutOp):
            return self._put(op)
        if isinstance(op, SearchOp):
            return self._search(op)
        if isinstance(op, ListNamespacesOp):
            return self._list(op)
        raise ValidationError(f"unknown store operation {type(op).__name__}")

    def _inside(self, namespace: Sequence[str], *, empty: bool, what: str = "namespace") -> tuple[str, ...]:
        labels = check_namespace(namespace, self.limits, what=what)
        if not labels and not empty:
            raise InvalidNamespaceError(f"{what} must have at least one label")
        return (*self._labels, *labels)

    def _key(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise ValidationError("key must be a non-empty string")
        if len(key) > self.limits.max_key_chars:
            raise ValidationError(f"key is longer than {self.limits.max_key_chars} characters")
        return key

    def _put(self, op: PutOp) -> PutOp:
        if op.value is not None:
            if not isinstance(op.value, Mapping):
                raise ValidationError("value must be a JSON object")
            size = value_size(dict(op.value))
            if size > self.limits.max_item_bytes:
                raise ItemTooLargeError(
                    f"value is {size} bytes as JSON; the limit is {self.limits.max_item_bytes}",
                    details={"size": size, "limit": self.limits.max_item_bytes},
                )
        if op.ttl is not None and not self.supports_ttl:
            raise ValidationError("ttl is not supported by this server's store backend (use SQLite or PostgreSQL)")
        if op.index not in (None, False) and not self.has_index:
            raise ValidationError("index fields need a semantic index, and none is configured")
        return PutOp(self._inside(op.namespace, empty=False), self._key(op.key), op.value, op.index, ttl=op.ttl)

    def _search(self, op: SearchOp) -> SearchOp:
        if op.query and not self.has_index:
            raise ValidationError("query (semantic search) needs an index, and none is configured; search by filter")
        if op.filter is not None and not isinstance(op.filter, dict):
            raise ValidationError("filter must be a JSON object")
        if op.filter and (problem := filter_problem(op.filter)):
            raise ValidationError(problem)
        self._check_page(op.limit, op.offset)
        prefix = self._inside(op.namespace_prefix, empty=True, what="namespace_prefix")
        return SearchOp(prefix, op.filter, op.limit, op.offset, op.query, op.refresh_ttl)

    def _list(self, op: ListNamespacesOp) -> ListNamespacesOp:
        self._check_page(op.limit, op.offset)
        if op.max_depth is not None and op.max_depth < 1:
            raise ValidationError("max_depth must be at least 1")
        prefix: tuple[str, ...] = ()
        conditions = []
        for condition in op.match_conditions or ():
            path = check_namespace(condition.path, self.limits, what=condition.match_type)
            if condition.match_type == "prefix":
                prefix = path
            else:
                conditions.append(MatchCondition("suffix", path))
        conditions.insert(0, MatchCondition("prefix", (*self._labels, *prefix)))
        depth = op.max_depth + len(self._labels) if op.max_depth is not None else None
        return ListNamespacesOp(tuple(conditions), depth, op.limit, op.offset)

    def _check_page(self, limit: int, offset: int) -> None:
        if not 1 <= limit <= self.limits.max_page:
            raise ValidationError(f"limit must be between 1 and {self.limits.max_page}")
        if not 0 <= offset <= self.limits.max_offset:
            raise ValidationError(f"offset must be between 0 and {self.limits.max_offset}")

    async def _check_room(self, op: PutOp) -> None:
        """A new item must fit under the tenant's count limit (an update always fits)."""
        if (await self.base.abatch([GetOp(op.namespace, op.key, refresh_ttl=False)]))[0] is not None:
            return
        if not isinstance(self.base, CountingStore):
            return
        held = await self.base.acount_items(self._labels[:1])
        limit = self.limits.max_items_per_tenant
        if held >= limit:
            raise StoreFullError(
                f"the tenant's store holds {held} items; the limit is {limit} (delete some first)",
                details={"items": held, "limit": limit},
            )

    # -- results out ---------------------------------------------------------------------------
    def _outward(self, result: Any) -> Any:
        if isinstance(result, list):
            return [self._outward(r) for r in result]
        if isinstance(result, tuple):  # a namespace of a listing
            return result[len(self._labels) :]
        if isinstance(result, SearchItem):
            return SearchItem(
                result.namespace[len(self._labels) :],
                result.key,
                result.value,
                result.created_at,
                result.updated_at,
                result.score,
            )
        if isinstance(result, Item):
            return Item(
                value=result.value,
                key=result.key,
                namespace=result.namespace[len(self._labels) :],
                created_at=result.created_at,
                updated_at=result.updated_at,
            )
        return result
