"""Assistants = templates, through the official langgraph-sdk client."""

from __future__ import annotations

import uuid

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError, PermissionDeniedError, UnprocessableEntityError

from agent_runtime.agents.assistants import ASSISTANT_NAMESPACE
from tests.agent_protocol.core.conftest import APServer


async def test_search_lists_every_template_with_a_stable_uuid(ap: APServer) -> None:
    client = ap.client()
    found = await client.assistants.search(limit=100)
    by_graph = {a["graph_id"]: a for a in found}
    assert {"writer", "analyst", "searcher", "research_report"} <= set(by_graph)
    writer = by_graph["writer"]
    assert writer["assistant_id"] == str(uuid.uuid5(ASSISTANT_NAMESPACE, "writer"))
    assert writer["name"] == "writer" and writer["version"] == 1 and writer["config"] == {}
    assert writer["metadata"]["created_by"] == "system"
    assert writer["description"].startswith("Creative writing")


async def test_search_filters_sorts_paginates_and_selects(ap: APServer) -> None:
    client = ap.client()
    only = await client.assistants.search(graph_id="analyst")
    assert [a["graph_id"] for a in only] == ["analyst"]
    ascending = await client.assistants.search(sort_by="graph_id", sort_order="asc", limit=100)
    names = [a["graph_id"] for a in ascending]
    assert names == sorted(names)
    page = await client.assistants.search(sort_by="graph_id", sort_order="asc", limit=2, offset=1)
    assert [a["graph_id"] for a in page] == names[1:3]
    tagged = await client.assistants.search(metadata={"tags": ["analysis"]})
    assert [a["graph_id"] for a in tagged] == ["analyst"]
    selected = await client.assistants.search(graph_id="writer", select=["assistant_id", "graph_id"])
    assert set(selected[0]) == {"assistant_id", "graph_id"}
    assert await client.assistants.count(graph_id="writer") == 1


async def test_get_by_name_or_uuid_and_unknown_is_404(ap: APServer) -> None:
    client = ap.client()
    by_name = await client.assistants.get("analyst")
    by_id = await client.assistants.get(by_name["assistant_id"])
    assert by_id == by_name
    with pytest.raises(NotFoundError):
        await client.assistants.get("no-such-template")
    with pytest.raises(NotFoundError):
        await client.assistants.get(str(uuid.uuid4()))


async def test_graph_schemas_and_subgraphs(ap: APServer) -> None:
    client = ap.client()
    graph = await client.assistants.get_graph("analyst")
    nodes = {n["id"] for n in graph["nodes"]}
    assert {"__start__", "model", "tools"} <= nodes
    assert {"source": "__start__"}.items() <= next(e for e in graph["edges"] if e["source"] == "__start__").items()
    xray = await client.assistants.get_graph("research_report", xray=True)
    assert {"search", "analyze", "write"} <= {n["id"] for n in xray["nodes"]}
    schemas = await client.assistants.get_schemas("writer")
    assert schemas["graph_id"] == "writer"
    assert "messages" in schemas["input_schema"]["properties"]
    assert "messages" in schemas["state_schema"]["properties"]
    assert await client.assistants.get_subgraphs("writer") == {}


async def test_creating_assistants_is_refused_properly(ap: APServer) -> None:
    with pytest.raises(PermissionDeniedError):
        await ap.client(ap.alice).assistants.create(graph_id="writer", config={"configurable": {}})
    with pytest.raises(UnprocessableEntityError) as info:
        await ap.client(ap.admin).assistants.create(graph_id="writer")
    assert "template file" in info.value.response.json()["error"]["message"]
    with pytest.raises(httpx.HTTPStatusError) as status:
        await ap.client(ap.admin).assistants.update("writer", metadata={"x": 1})
    assert status.value.response.status_code == 405
    with pytest.raises(httpx.HTTPStatusError) as status:
        await ap.client(ap.admin).assistants.delete("writer")
    assert status.value.response.status_code == 405
    assert (await ap.client().assistants.get("writer"))["metadata"].get("x") is None


async def test_bad_input_names_the_field(ap: APServer) -> None:
    headers = {"x-api-key": ap.alice}
    async with httpx.AsyncClient(base_url=ap.url, headers=headers) as http:
        bad_limit = await http.post("/assistants/search", json={"limit": 0})
        assert bad_limit.status_code == 422 and "limit" in bad_limit.json()["error"]["message"]
        unknown = await http.post("/assistants/search", json={"colour": "red"})
        assert unknown.status_code == 422 and "colour" in unknown.json()["error"]["message"]
        query = await http.get("/assistants/writer", params={"version": 2})
        assert query.status_code == 422 and "version" in query.json()["error"]["message"]
        xray = await http.get("/assistants/writer/graph", params={"xray": "deep"})
        assert xray.status_code == 422
        anonymous = await httpx.AsyncClient(base_url=ap.url).post("/assistants/search", json={})
        assert anonymous.status_code == 401
