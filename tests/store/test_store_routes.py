"""``/store`` with the official ``langgraph-sdk`` client against a real server on a socket: the item
round trip in LangGraph's shapes, tenant and user isolation, limits and bad input; on Redis, two
server processes share one store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError, PermissionDeniedError, UnprocessableEntityError

from agent_runtime.settings import Settings, StoreSettings
from tests.conftest import RedisServer
from tests.server.conftest import LiveServer

RW = ["store:read", "store:write"]
EXAMPLES = Path(__file__).parents[2] / "docs" / "templates"
LIMITS = StoreSettings(max_item_bytes=1_000, max_items_per_tenant=6, max_namespace_depth=4)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(
        state_backend="sqlite", data_dir=tmp_path_factory.mktemp("store-routes"), store=LIMITS, templates_dir=EXAMPLES
    )
    live = LiveServer(settings).start()
    yield live
    live.stop()


@pytest.fixture
async def clients(server: LiveServer, request: pytest.FixtureRequest) -> AsyncIterator[dict[str, LangGraphClient]]:
    """SDK clients for alice and bob (tenant t-<test>), eve (another tenant) and the tenant's admin."""
    tenant = f"t{abs(hash(request.node.name)) % 10**8}"
    keys = {
        "alice": server.key(tenant, "alice", RW),
        "bob": server.key(tenant, "bob", RW),
        "eve": server.key(f"{tenant}-other", "alice", RW),
        "admin": server.key(tenant, "root", ["admin"]),
        "reader": server.key(tenant, "alice", ["store:read"]),
    }
    made = {name: get_client(url=server.url, api_key=key) for name, key in keys.items()}
    yield made
    for client in made.values():
        await client.aclose()


async def test_item_round_trip_in_langgraph_shapes(clients: dict[str, LangGraphClient]) -> None:
    store = clients["alice"].store
    await store.put_item(["prefs", "ui"], "theme", {"mode": "dark", "size": 12})
    item = await store.get_item(["prefs", "ui"], "theme")
    assert item["namespace"] == ["prefs", "ui"] and item["key"] == "theme"
    assert item["value"] == {"mode": "dark", "size": 12} and item["created_at"] and item["updated_at"]
    await store.put_item(["prefs", "ui"], "theme", {"mode": "light", "size": 12})
    await store.put_item(["prefs", "lang"], "main", {"code": "pt", "size": 3})
    found = await store.search_items(["prefs"], filter={"size": 12})
    assert [(i["key"], i["value"]["mode"]) for i in found["items"]] == [("theme", "light")]
    everything = await store.search_items([], limit=10)
    assert sorted(i["key"] for i in everything["items"]) == ["main", "theme"]
    assert len((await store.search_items(["prefs"], limit=1, offset=1))["items"]) == 1
    listed = await store.list_namespaces(prefix=["prefs"])
    assert listed == {"namespaces": [["prefs", "lang"], ["prefs", "ui"]]}
    assert (await store.list_namespaces(max_depth=1))["namespaces"] == [["prefs"]]
    assert (await store.list_namespaces(suffix=["ui"]))["namespaces"] == [["prefs", "ui"]]
    await store.delete_item(["prefs", "ui"], "theme")
    with pytest.raises(NotFoundError):
        await store.get_item(["prefs", "ui"], "theme")
    with pytest.raises(NotFoundError):
        await store.delete_item(["prefs", "ui"], "theme")


async def test_tenants_and_users_are_isolated(clients: dict[str, LangGraphClient]) -> None:
    await clients["alice"].store.put_item(["notes"], "n1", {"text": "alice"})
    await clients["bob"].store.put_item(["notes"], "n1", {"text": "bob"})
    assert (await clients["alice"].store.get_item(["notes"], "n1"))["value"] == {"text": "alice"}
    eve = clients["eve"].store  # another tenant, same user name
    with pytest.raises(NotFoundError):
        await eve.get_item(["notes"], "n1")
    assert (await eve.search_items([]))["items"] == [] and (await eve.list_namespaces())["namespaces"] == []
    for guess in (["bob", "notes"], ["*", "notes"], ["*"]):  # other users' labels, wildcards
        assert (await clients["alice"].store.search_items(guess))["items"] == []
    for guess in (["bob", "notes"], ["*", "notes"]):
        assert (await clients["alice"].store.list_namespaces(prefix=guess))["namespaces"] == []
    # a wildcard matches any label, but only within her own namespaces
    assert (await clients["alice"].store.list_namespaces(prefix=["*"]))["namespaces"] == [["notes"]]
    with pytest.raises(NotFoundError):
        await clients["alice"].store.get_item(["bob", "notes"], "n1")
    admin = clients["admin"].store
    assert (await admin.list_namespaces())["namespaces"] == [["alice", "notes"], ["bob", "notes"]]
    assert (await admin.get_item(["bob", "notes"], "n1"))["value"] == {"text": "bob"}
    with pytest.raises(PermissionDeniedError):
        await clients["reader"].store.put_item(["notes"], "n2", {"text": "no"})
    assert (await clients["reader"].store.get_item(["notes"], "n1"))["value"] == {"text": "alice"}


async def test_bad_input_answers_422(server: LiveServer, clients: dict[str, LangGraphClient]) -> None:
    store = clients["alice"].store
    too_deep = ["a", "b", "c", "d", "e"]
    for call in (
        store.put_item(too_deep, "k", {"v": 1}),
        store.put_item([], "k", {"v": 1}),
        store.put_item(["a", ""], "k", {"v": 1}),
        store.put_item(["a"], "k", {"text": "x" * 2_000}),
        store.put_item(["a"], "k", {"v": 1}, index=["text"]),
        store.put_item(["a"], "", {"v": 1}),
        store.search_items(["a"], query="semantic search needs an index"),
        store.search_items(["a"], limit=0),
        store.list_namespaces(max_depth=0),
    ):
        with pytest.raises(UnprocessableEntityError):
            await call
    key = server.key("acme", "alice", RW)
    with httpx.Client(base_url=server.url, headers={"x-api-key": key}) as raw:
        dotted = raw.put("/store/items", json={"namespace": ["a.b"], "key": "k", "value": {}})
        assert dotted.status_code == 422 and dotted.json()["error"]["code"] == "invalid_namespace"
        empty_label = raw.get("/store/items", params={"namespace": "a..b", "key": "k"})
        assert empty_label.status_code == 422 and empty_label.json()["error"]["code"] == "invalid_namespace"
        oversize = raw.put("/store/items", json={"namespace": ["a"], "key": "k", "value": {"t": "x" * 2_000}})
        assert oversize.status_code == 422 and oversize.json()["error"]["code"] == "item_too_large"
        unknown = raw.post("/store/items/search", json={"namespace_prefix": [], "sort": "key"})
        assert unknown.status_code == 422 and "sort" in unknown.text
        not_an_object = raw.put("/store/items", json={"namespace": ["a"], "key": "k", "value": [1]})
        assert not_an_object.status_code == 422
        assert raw.get("/store/items", params={"namespace": "", "key": "k"}).status_code == 422
        assert raw.post("/store/items/search", json={}).json() == {"items": []}  # nothing was stored
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.post("/store/items/search", json={}).status_code == 401


async def test_the_tenant_item_limit_holds(clients: dict[str, LangGraphClient]) -> None:
    for i in range(LIMITS.max_items_per_tenant):
        who = "alice" if i % 2 else "bob"
        await clients[who].store.put_item(["n"], f"k{i}", {"v": i})
    with pytest.raises(ConflictError) as full:
        await clients["alice"].store.put_item(["n"], "one-more", {"v": 0})
    assert "limit" in full.value.response.text
    await clients["alice"].store.put_item(["n"], "k1", {"v": "updated"})  # updates still fit
    await clients["eve"].store.put_item(["n"], "k1", {"v": 1})  # other tenants are not affected
    await clients["bob"].store.delete_item(["n"], "k0")
    await clients["alice"].store.put_item(["n"], "one-more", {"v": 0})


async def test_what_an_agent_remembered_is_in_the_callers_store(server: LiveServer) -> None:
    key = server.key("memo", "alice", ["agents:run:companion", "sessions", "store:read"])
    with server.client(key) as http:
        for session, text in (("a", "remember that my dog is called Rex"), ("b", "what do you remember?")):
            assert http.post("/v1/sessions", json={"session_id": session}).status_code == 201
            ran = http.post("/v1/runs", json={"template": "companion", "input": text, "session_id": session})
            assert ran.status_code == 200, ran.text
        assert "my dog is called Rex" in ran.json()["output"]  # recalled in the second thread
    client = get_client(url=server.url, api_key=key)
    try:
        found = await client.store.search_items(["memories"])
        assert [i["value"]["text"] for i in found["items"]] == ["my dog is called Rex"]
        other = get_client(url=server.url, api_key=server.key("memo", "bob", ["store:read"]))
        assert (await other.store.search_items([]))["items"] == []
        await other.aclose()
    finally:
        await client.aclose()


@pytest.mark.redis
def test_two_servers_on_redis_share_the_store(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    redis_server.flushall()
    settings = [
        Settings(state_backend="redis", redis_url=redis_server.url, data_dir=tmp_path_factory.mktemp(f"w{i}"))
        for i in range(2)
    ]
    first, second = (LiveServer(s).start() for s in settings)
    try:
        key = first.key("acme", "alice", RW)  # keys live in Redis too: valid on both
        other = first.key("acme", "bob", RW)

        async def scenario() -> None:
            one, two = get_client(url=first.url, api_key=key), get_client(url=second.url, api_key=key)
            bob = get_client(url=second.url, api_key=other)
            await one.store.put_item(["notes"], "n1", {"text": "written on worker one"})
            assert (await two.store.get_item(["notes"], "n1"))["value"] == {"text": "written on worker one"}
            assert (await two.store.list_namespaces())["namespaces"] == [["notes"]]
            assert (await bob.store.search_items([]))["items"] == []
            await two.store.delete_item(["notes"], "n1")
            with pytest.raises(NotFoundError):
                await one.store.get_item(["notes"], "n1")
            for client in (one, two, bob):
                await client.aclose()

        asyncio.run(scenario())
    finally:
        first.stop()
        second.stop()
