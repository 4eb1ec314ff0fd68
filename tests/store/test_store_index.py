"""Semantic search where an index is configured (the offline hashing embedder, on memory and on
SQLite with sqlite-vec where Python's sqlite3 can load it); refused at start-up where the backend
cannot have one (Redis; SQLite without extension loading) and, without an index, per query (422)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent_runtime.errors import ConfigurationError
from agent_runtime.settings import StoreSettings
from agent_runtime.store import StoreScope, TenantStore, build_store
from agent_runtime.store.embeddings import HashingEmbeddings
from tests.store.conftest import backend_settings

INDEXED = StoreSettings(index_embed="offline", index_dims=128, index_fields=["text"])


def test_the_hashing_embedder_is_deterministic_and_unit_length() -> None:
    embed = HashingEmbeddings(64)
    one, again = embed.embed_query("Hiking in the mountains"), embed.embed_documents(["hiking in the MOUNTAINS"])[0]
    assert one == again and abs(sum(v * v for v in one) - 1.0) < 1e-9 and len(one) == 64


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_query_ranks_the_matching_memory_first(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = backend_settings(backend, tmp_path, request, store=INDEXED)
    if backend == "sqlite" and not hasattr(sqlite3.Connection, "enable_load_extension"):
        with pytest.raises(ConfigurationError, match="extensions"):
            await build_store(settings)
        return
    store = await build_store(settings)
    try:
        alice = TenantStore(store, StoreScope("acme", "alice"), INDEXED)
        bob = TenantStore(store, StoreScope("acme", "bob"), INDEXED)
        await alice.aput(("m",), "hike", {"text": "loves hiking in the mountains every summer"})
        await alice.aput(("m",), "food", {"text": "favourite food is pasta with tomato sauce"})
        await alice.aput(("m",), "raw", {"text": "mountains hiking hiking"}, index=False)  # not embedded
        await bob.aput(("m",), "bob", {"text": "hiking in the mountains"})
        found = await alice.asearch(("m",), query="hiking mountains", limit=2)
        assert found[0].key == "hike" and found[0].score is not None
        assert "bob" not in {i.key for i in await alice.asearch((), query="hiking in the mountains", limit=10)}
    finally:
        await store.aclose()  # type: ignore[attr-defined]


@pytest.mark.redis
async def test_redis_refuses_an_index_at_start(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with pytest.raises(ConfigurationError, match="semantic index"):
        await build_store(backend_settings("redis", tmp_path, request, store=INDEXED))


async def test_the_sdk_searches_by_query_where_an_index_is_configured(tmp_path: Path) -> None:
    from langgraph_sdk import get_client

    from agent_runtime.settings import Settings
    from tests.server.conftest import LiveServer

    server = LiveServer(Settings(state_backend="memory", data_dir=tmp_path, store=INDEXED)).start()
    try:
        client = get_client(url=server.url, api_key=server.key("acme", "alice", ["store:read", "store:write"]))
        await client.store.put_item(["m"], "hike", {"text": "loves hiking in the mountains"})
        await client.store.put_item(["m"], "food", {"text": "favourite food is pasta"}, index=["text"])
        found = await client.store.search_items(["m"], query="mountain hiking trip", limit=1)
        assert [i["key"] for i in found["items"]] == ["hike"] and found["items"][0]["score"] > 0
        await client.aclose()
    finally:
        server.stop()
