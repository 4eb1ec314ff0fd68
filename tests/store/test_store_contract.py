"""One contract for every backend: raw ``BaseStore`` behaviour, then the tenant-confined view on top."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.store.base import BaseStore

from agent_runtime.errors import InvalidNamespaceError, ItemTooLargeError, StoreFullError, ValidationError
from agent_runtime.settings import StoreSettings
from agent_runtime.store import StoreScope, TenantStore, build_store
from tests.store.conftest import backend_settings


async def test_put_get_update_delete(backend: BaseStore) -> None:
    await backend.aput(("docs", "a"), "k1", {"title": "one", "n": 1})
    first = await backend.aget(("docs", "a"), "k1")
    assert first is not None and first.value == {"title": "one", "n": 1} and first.namespace == ("docs", "a")
    await backend.aput(("docs", "a"), "k1", {"title": "two", "n": 2})
    second = await backend.aget(("docs", "a"), "k1")
    assert second is not None and second.value["title"] == "two"
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    await backend.adelete(("docs", "a"), "k1")
    assert await backend.aget(("docs", "a"), "k1") is None
    assert await backend.aget(("docs", "nowhere"), "k1") is None


async def test_search_by_prefix_filter_and_page(backend: BaseStore) -> None:
    for i in range(5):
        await backend.aput(("docs", "a" if i % 2 else "b"), f"k{i}", {"n": i, "kind": "odd" if i % 2 else "even"})
    await backend.aput(("docsx",), "other", {"n": 99})  # 'docs' must not match 'docsx'
    everything = await backend.asearch(("docs",), limit=100)
    assert sorted(i.key for i in everything) == ["k0", "k1", "k2", "k3", "k4"]
    odd = await backend.asearch(("docs",), filter={"kind": "odd"})
    assert sorted(i.key for i in odd) == ["k1", "k3"]
    big = await backend.asearch(("docs",), filter={"n": {"$gte": 3}})
    assert sorted(i.key for i in big) == ["k3", "k4"]
    pages = [await backend.asearch(("docs",), limit=2, offset=o) for o in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(i.key for p in pages for i in p) == ["k0", "k1", "k2", "k3", "k4"]
    assert {i.key for i in await backend.asearch((), limit=100)} >= {"k0", "other"}


async def test_list_namespaces(backend: BaseStore) -> None:
    for ns in [("a", "x", "1"), ("a", "x", "2"), ("a", "y"), ("b", "x")]:
        await backend.aput(ns, "k", {"v": 1})
    assert await backend.alist_namespaces(prefix=("a",)) == [("a", "x", "1"), ("a", "x", "2"), ("a", "y")]
    assert await backend.alist_namespaces(prefix=("a",), max_depth=2) == [("a", "x"), ("a", "y")]
    assert await backend.alist_namespaces(suffix=("x",)) == [("b", "x")]
    assert await backend.alist_namespaces(prefix=("a", "*", "2")) == [("a", "x", "2")]
    assert await backend.alist_namespaces(limit=2, offset=1) == [("a", "x", "2"), ("a", "y")]


async def test_count_items(backend: BaseStore) -> None:
    for ns in [("t", "u"), ("t", "u", "deep"), ("t2", "u")]:
        await backend.aput(ns, "k", {"v": 1})
    await backend.aput(("t", "u"), "k2", {"v": 1})
    assert await backend.acount_items(("t",)) == 3  # type: ignore[attr-defined]
    assert await backend.acount_items(("t2",)) == 1  # type: ignore[attr-defined]


@pytest.fixture
def limits() -> StoreSettings:
    return StoreSettings(max_item_bytes=200, max_items_per_tenant=3, max_namespace_depth=3)


async def test_tenants_and_users_never_see_each_other(backend: BaseStore, limits: StoreSettings) -> None:
    alice = TenantStore(backend, StoreScope("acme", "alice"), limits)
    bob = TenantStore(backend, StoreScope("acme", "bob"), limits)
    mallory = TenantStore(backend, StoreScope("evil", "alice"), limits)  # same user name, other tenant
    admin = TenantStore(backend, StoreScope("acme"), limits)
    await alice.aput(("notes",), "n1", {"text": "alice's"})
    await bob.aput(("notes",), "n1", {"text": "bob's"})
    mine = await alice.aget(("notes",), "n1")
    assert mine is not None and mine.value["text"] == "alice's" and mine.namespace == ("notes",)
    assert await mallory.aget(("notes",), "n1") is None
    assert await mallory.asearch((), limit=100) == [] and await mallory.alist_namespaces() == []
    assert [i.value["text"] for i in await bob.asearch(())] == ["bob's"]
    assert await alice.alist_namespaces() == [("notes",)]
    for sneaky in [("acme", "bob", "notes"), ("t:acme", "bob", "notes"), ("*", "notes"), ("..",)]:
        with pytest.raises(InvalidNamespaceError) if "." in sneaky[0] else _no_error():
            assert await alice.asearch(sneaky) == [] and await alice.alist_namespaces(prefix=sneaky) == []
    assert await admin.alist_namespaces() == [("alice", "notes"), ("bob", "notes")]
    by_admin = await admin.aget(("bob", "notes"), "n1")
    assert by_admin is not None and by_admin.value["text"] == "bob's"
    assert sorted(i.namespace for i in await admin.asearch(())) == [("alice", "notes"), ("bob", "notes")]


async def test_labels_of_tenants_cannot_split_or_wildcard(backend: BaseStore, limits: StoreSettings) -> None:
    dotted = TenantStore(backend, StoreScope("a.b", "u"), limits)
    plain = TenantStore(backend, StoreScope("a", "b.u"), limits)
    star = TenantStore(backend, StoreScope("*", "*"), limits)
    await dotted.aput(("n",), "k", {"who": "dotted"})
    assert await plain.asearch(()) == [] and await star.asearch(()) == [] and await star.alist_namespaces() == []
    assert await plain.aget(("n",), "k") is None


class _no_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


async def test_bad_input_is_refused(backend: BaseStore, limits: StoreSettings) -> None:
    view = TenantStore(backend, StoreScope("acme", "alice"), limits)
    for namespace in [(), ("",), ("a.b",), ("a", "b", "c", "d"), ("x" * 200,)]:
        with pytest.raises(InvalidNamespaceError):
            await view.aput(namespace, "k", {"v": 1})
    with pytest.raises(ItemTooLargeError) as too_big:
        await view.aput(("n",), "k", {"text": "x" * 300})
    assert too_big.value.status_code == 422 and too_big.value.details["limit"] == 200
    with pytest.raises(ValidationError):
        await view.aput(("n",), "", {"v": 1})
    with pytest.raises(ValidationError, match="query"):
        await view.asearch(("n",), query="semantic please")
    with pytest.raises(ValidationError, match="limit"):
        await view.asearch(("n",), limit=0)
    with pytest.raises(ValidationError, match="regex"):
        await view.asearch(("n",), filter={"text": {"$regex": ".*"}})
    with pytest.raises(ValidationError, match="operator"):
        await view.asearch(("n",), filter={"$or": [{"a": 1}]})
    assert await view.asearch(()) == []  # nothing was written by any refused call


async def test_the_item_count_limit_is_per_tenant(backend: BaseStore, limits: StoreSettings) -> None:
    alice = TenantStore(backend, StoreScope("acme", "alice"), limits)
    bob = TenantStore(backend, StoreScope("acme", "bob"), limits)
    other = TenantStore(backend, StoreScope("other", "carol"), limits)
    await alice.aput(("n",), "1", {"v": 1})
    await alice.aput(("n",), "2", {"v": 1})
    await bob.aput(("m",), "1", {"v": 1})
    with pytest.raises(StoreFullError) as full:
        await bob.aput(("m",), "2", {"v": 1})
    assert full.value.status_code == 409 and full.value.details == {"items": 3, "limit": 3}
    await alice.aput(("n",), "1", {"v": 2})  # an update always fits
    await other.aput(("n",), "1", {"v": 1})  # another tenant has its own room
    await alice.adelete(("n",), "2")
    await bob.aput(("m",), "2", {"v": 1})


async def test_sqlite_items_survive_a_restart(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    settings = backend_settings("sqlite", tmp_path, request)
    first = await build_store(settings)
    await TenantStore(first, StoreScope("acme", "alice")).aput(("n",), "k", {"kept": True})
    await first.aclose()  # type: ignore[attr-defined]
    second = await build_store(settings)
    try:
        item = await TenantStore(second, StoreScope("acme", "alice")).aget(("n",), "k")
        assert item is not None and item.value == {"kept": True}
    finally:
        await second.aclose()  # type: ignore[attr-defined]


async def test_ttl_is_kept_where_the_backend_has_it_and_refused_elsewhere(backend: BaseStore) -> None:
    view = TenantStore(backend, StoreScope("acme", "alice"))
    if backend.supports_ttl:
        await view.aput(("n",), "k", {"v": 1}, ttl=5)
        assert (await view.aget(("n",), "k")) is not None
    else:
        with pytest.raises(ValidationError, match="ttl"):
            await view.aput(("n",), "k", {"v": 1}, ttl=5)
        assert await view.aget(("n",), "k") is None
    assert backend.supports_ttl == (type(backend).__name__ == "SqliteStore")


async def test_search_over_more_items_than_one_scan_chunk(backend: BaseStore) -> None:
    from langgraph.store.base import PutOp

    await backend.abatch([PutOp(("many",), f"k{i:03}", {"n": i, "pad": "x" * 50}) for i in range(450)])
    high = await backend.asearch(("many",), filter={"n": {"$gte": 400}}, limit=100)
    assert sorted(i.value["n"] for i in high) == list(range(400, 450))
    pages = [await backend.asearch(("many",), limit=100, offset=o) for o in range(0, 500, 100)]
    assert sorted(i.key for p in pages for i in p) == [f"k{i:03}" for i in range(450)]
