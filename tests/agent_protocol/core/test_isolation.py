"""Auth and isolation: x-api-key or Bearer, scopes, and nobody else's threads (404, never 403)."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import AuthenticationError, NotFoundError, PermissionDeniedError

from tests.agent_protocol.core.conftest import APServer, bound


async def test_x_api_key_and_bearer_are_the_same_principal(ap: APServer) -> None:
    thread = await ap.client(ap.alice).threads.create(metadata={"via": "x-api-key"})
    bearer = httpx.get(f"{ap.url}/threads/{thread['thread_id']}", headers={"Authorization": f"Bearer {ap.alice}"})
    assert bearer.status_code == 200 and bearer.json()["metadata"] == {"via": "x-api-key"}
    both = httpx.get(
        f"{ap.url}/threads/{thread['thread_id']}", headers={"Authorization": f"Bearer {ap.bob}", "x-api-key": ap.alice}
    )
    assert both.status_code == 401  # two different credentials: refused, not one picked
    # x-api-key works on the native routes too
    assert httpx.get(f"{ap.url}/v1/sessions", headers={"x-api-key": ap.alice}).status_code == 200


async def test_missing_or_bad_key_is_401(ap: APServer) -> None:
    with pytest.raises(AuthenticationError):
        await get_client(url=ap.url, api_key=None).threads.search()
    with pytest.raises(AuthenticationError):
        await ap.client("ar_not_a_real_key").assistants.search()


async def test_threads_need_the_sessions_scope(ap: APServer) -> None:
    with pytest.raises(PermissionDeniedError):
        await ap.client(ap.no_sessions).threads.create()
    assert await ap.client(ap.no_sessions).assistants.search(graph_id="writer")  # assistants need no scope


async def test_other_users_and_tenants_get_404(ap: APServer) -> None:
    alice = ap.client(ap.alice)
    thread = await alice.threads.create(graph_id="writer", metadata={"owner": "alice"})
    thread_id = thread["thread_id"]
    ap.run(ap.alice, thread_id, "a secret poem")
    for key in (ap.bob, ap.eve):
        other = ap.client(key)
        for call in (
            other.threads.get(thread_id),
            other.threads.get_state(thread_id),
            other.threads.get_history(thread_id),
            other.threads.update(thread_id, metadata={"x": 1}),
            other.threads.update_state(thread_id, {"messages": []}),
            other.threads.copy(thread_id),
            other.threads.delete(thread_id),
        ):
            with pytest.raises(NotFoundError):
                await call
        assert thread_id not in {t["thread_id"] for t in await other.threads.search(limit=1000)}
    # the admin of alice's tenant reaches it; alice's thread is untouched by all the above
    assert (await ap.client(ap.admin).threads.get(thread_id))["metadata"] == {"owner": "alice", **bound("writer")}
    assert len((await alice.threads.get_state(thread_id))["values"]["messages"]) == 2


async def test_same_thread_id_in_two_tenants_are_two_threads(ap: APServer) -> None:
    thread_id = "shared-name-" + ap.backend
    mine = await ap.client(ap.alice).threads.create(thread_id=thread_id, metadata={"t": "acme"}, if_exists="do_nothing")
    theirs = await ap.client(ap.eve).threads.create(thread_id=thread_id, metadata={"t": "evil"}, if_exists="do_nothing")
    assert mine["thread_id"] == theirs["thread_id"] == thread_id
    assert (await ap.client(ap.alice).threads.get(thread_id))["metadata"] == {"t": "acme"}
    assert (await ap.client(ap.eve).threads.get(thread_id))["metadata"] == {"t": "evil"}


async def test_a_bare_thread_is_bound_to_the_template_of_its_first_run(ap: APServer) -> None:
    """As Agent Chat UI finds an assistant's threads: by ``graph_id`` or ``assistant_id`` metadata."""
    client = ap.client()
    thread = await client.threads.create()
    assert (await client.threads.get(thread["thread_id"]))["metadata"] == {}
    ap.run(ap.alice, thread["thread_id"], "hello there", template="analyst")
    got = await client.threads.get(thread["thread_id"])
    assert got["metadata"] == bound("analyst")
    for metadata in ({"graph_id": "analyst"}, {"assistant_id": bound("analyst")["assistant_id"]}):
        found = await client.threads.search(metadata=metadata, limit=1000)
        assert thread["thread_id"] in {t["thread_id"] for t in found}
    state = await client.threads.get_state(thread["thread_id"])
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"]
