"""``/store``: the long-term memory routes of LangGraph's Agent Server API (what ``client.store`` calls).

Every request sees the store through a ``TenantStore`` for its principal: its namespaces live under
its tenant and user (an admin's under its tenant, first label = user), so no namespace, prefix or
wildcard a client sends reaches anyone else's items. Reading needs ``store:read``, writing
``store:write``. Unknown items answer 404; malformed namespaces, oversize values and options this
server's store cannot honour (``query`` or ``index`` without a semantic index, ``ttl`` on a backend
without TTLs) answer 422; a tenant at its item limit gets 409.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from langgraph.store.base import BaseStore
from pydantic import BaseModel, ConfigDict, Field

from agent_runtime.errors import ItemNotFoundError
from agent_runtime.scopes import STORE_READ, STORE_WRITE
from agent_runtime.server.deps import CurrentPrincipal, CurrentRuntime, get_principal, is_admin, require_scope
from agent_runtime.server.routes._docs import errors
from agent_runtime.store import StoreScope, TenantStore
from agent_runtime.types import Principal

__all__ = ["router"]

router = APIRouter(tags=["store"])


async def _can_read(principal: Annotated[Principal, Depends(get_principal)]) -> None:
    require_scope(principal, STORE_READ)


async def _can_write(principal: Annotated[Principal, Depends(get_principal)]) -> None:
    require_scope(principal, STORE_WRITE)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PutItem(_Body):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    """Fields to embed for semantic search; only where an index is configured (``false``: none)."""
    ttl: float | None = Field(default=None, gt=0)
    """Minutes the item lives (backends with TTL support: SQLite, PostgreSQL)."""


class DeleteItem(_Body):
    namespace: list[str]
    key: str


class SearchItems(_Body):
    namespace_prefix: list[str] = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    query: str | None = None
    """Natural-language search; only where a semantic index is configured, else 422."""
    refresh_ttl: bool | None = None


class ListNamespaces(_Body):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0


def _view(runtime: Any, principal: Principal) -> TenantStore:
    base: BaseStore = runtime.store
    scope = StoreScope(principal.tenant, None if is_admin(principal) else principal.user)
    return TenantStore(base, scope, runtime.settings.store)


@router.put(
    "/store/items",
    status_code=204,
    dependencies=[Depends(_can_write)],
    responses=errors(401, 403, 409, 422, 503),
    summary="Store or update an item",
)
async def put_item(body: PutItem, principal: CurrentPrincipal, runtime: CurrentRuntime) -> Response:
    view = _view(runtime, principal)
    await view.aput(tuple(body.namespace), body.key, body.value, body.index, ttl=body.ttl)
    return Response(status_code=204)


@router.get(
    "/store/items",
    dependencies=[Depends(_can_read)],
    responses=errors(401, 403, 404, 422, 503),
    summary="Read an item",
)
async def get_item(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    key: Annotated[str, Query(min_length=1)],
    namespace: Annotated[str, Query(description="The namespace's labels joined by dots.")] = "",
    refresh_ttl: bool | None = None,
) -> dict[str, Any]:
    labels = tuple(namespace.split(".")) if namespace else ()
    item = await _view(runtime, principal).aget(labels, key, refresh_ttl=refresh_ttl)
    if item is None:
        raise ItemNotFoundError(f"no item {key!r} in namespace {list(labels)}")
    return item.dict()


@router.delete(
    "/store/items",
    status_code=204,
    dependencies=[Depends(_can_write)],
    responses=errors(401, 403, 404, 422, 503),
    summary="Delete an item",
)
async def delete_item(body: DeleteItem, principal: CurrentPrincipal, runtime: CurrentRuntime) -> Response:
    view = _view(runtime, principal)
    namespace = tuple(body.namespace)
    if await view.aget(namespace, body.key, refresh_ttl=False) is None:
        raise ItemNotFoundError(f"no item {body.key!r} in namespace {body.namespace}")
    await view.adelete(namespace, body.key)
    return Response(status_code=204)


@router.post(
    "/store/items/search",
    dependencies=[Depends(_can_read)],
    responses=errors(401, 403, 422, 503),
    summary="Search items under a namespace prefix",
)
async def search_items(body: SearchItems, principal: CurrentPrincipal, runtime: CurrentRuntime) -> dict[str, Any]:
    found = await _view(runtime, principal).asearch(
        tuple(body.namespace_prefix),
        query=body.query,
        filter=body.filter,
        limit=body.limit,
        offset=body.offset,
        refresh_ttl=body.refresh_ttl,
    )
    return {"items": [item.dict() for item in found]}


@router.post(
    "/store/namespaces",
    dependencies=[Depends(_can_read)],
    responses=errors(401, 403, 422, 503),
    summary="List namespaces",
)
async def list_namespaces(body: ListNamespaces, principal: CurrentPrincipal, runtime: CurrentRuntime) -> dict[str, Any]:
    namespaces = await _view(runtime, principal).alist_namespaces(
        prefix=tuple(body.prefix) if body.prefix else None,
        suffix=tuple(body.suffix) if body.suffix else None,
        max_depth=body.max_depth,
        limit=body.limit,
        offset=body.offset,
    )
    return {"namespaces": [list(ns) for ns in namespaces]}
