"""Tenant isolation: every principal outside tenant A, against every HTTP endpoint and CLI command
that reads data, on A's objects: refused, and refused exactly like a nonexistent object (same status,
same error code, type and message once the id is blanked), so nobody learns that A's ids exist.

Principals of tenant B: a user key, an admin key, an admin JWT; plus another (non-admin) user of
tenant A. Objects of A: a session with messages, a run paused for approval, usage rows, dashboard
series, API keys. Run on SQLite and on Redis.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from click.testing import CliRunner

from agent_runtime.cli import main as cli
from agent_runtime.settings import Settings
from tests.reliability.conftest import record
from tests.server.conftest import LiveServer
from tests.workflows.conftest import gated_template, recording_tool

JWT_SECRET = "isolation-secret-" + "j" * 40
NOWHERE = "ses_00000000000000000000000000000000"
COUNTS = {"cases": 0, "leaks": 0}
_AP_IN = {"messages": [{"role": "user", "content": "hi"}]}


@dataclass
class World:
    server: LiveServer
    env: dict[str, str]
    alice: str
    outsiders: dict[str, str]
    session: str
    paused: str
    alice_key_id: str


@pytest.fixture(scope="module", autouse=True)
def _count() -> Iterator[None]:
    yield
    record("isolation", cases=COUNTS["cases"], leaks=COUNTS["leaks"])


@pytest.fixture(scope="module", params=["sqlite", "redis", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp(f"isolation-{request.param}")
    env = {"AGENT_RUNTIME_STATE_BACKEND": request.param, "AGENT_RUNTIME_DATA_DIR": str(data_dir)}
    options: dict[str, Any] = {"data_dir": data_dir, "jwt_secret": JWT_SECRET}
    if request.param == "postgres":
        database = request.getfixturevalue("postgres_database")
        database.truncate()
        options["state_url"] = env["AGENT_RUNTIME_STATE_URL"] = database.url
        del env["AGENT_RUNTIME_STATE_BACKEND"]
    else:
        options["state_backend"] = request.param
    if request.param == "redis":
        redis_server = request.getfixturevalue("redis_server")
        redis_server.flushall()
        options["redis_url"] = env["AGENT_RUNTIME_REDIS_URL"] = redis_server.url
    server = LiveServer(Settings(**options)).start()
    assert server.runtime is not None
    server.runtime.factory.register_tool(recording_tool(data_dir / "calls.txt"), replace=True)
    server.runtime.factory.register_template(gated_template(), replace=True)
    alice = server.key("tenant-a", "alice", ["agents:run:*", "sessions", "usage"])
    jwt_admin_b = pyjwt.encode(
        {"sub": "boss", "tenant": "tenant-b", "scope": "admin agents:run:*", "exp": 4_102_444_800},
        JWT_SECRET,
        algorithm="HS256",
    )
    outsiders = {
        "B user key": server.key("tenant-b", "bob", ["agents:run:*", "sessions", "usage"]),
        "B admin key": server.key("tenant-b", "root", ["admin"]),
        "B admin JWT": jwt_admin_b,
        "A other user": server.key("tenant-a", "mallory", ["agents:run:*", "sessions", "usage"]),
    }
    with server.client(alice) as client:
        session = client.post("/v1/sessions", json={"template": "writer"}).json()["id"]
        ran = client.post("/v1/runs", json={"template": "writer", "input": "my name is Ada", "session_id": session})
        assert ran.status_code == 200, ran.text
        paused = client.post("/v1/runs", json={"template": "gated", "input": 'use publish {"text": "x"}'}).json()
        assert paused["status"] == "interrupted", paused
    key_id = alice.split("_")[1]
    yield World(server, env, alice, outsiders, session, paused["metadata"]["resume_id"], key_id)
    server.stop()


def shape(response: httpx.Response, object_id: str) -> tuple[int, Any]:
    """What a caller can observe, with the id itself blanked out."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    text = json.dumps(body, sort_keys=True).replace(object_id, "<id>")
    error = json.loads(text).get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error.pop("request_id", None)
        return response.status_code, error
    return response.status_code, text


def refused_like_nothing(name: str, observe: Callable[[str], Any], real_id: str, fake_id: str) -> None:
    """A's object and a nonexistent one look the same to the caller, and it is a refusal."""
    COUNTS["cases"] += 1
    real, fake = observe(real_id), observe(fake_id)
    refused = isinstance(real, tuple) and real[0] >= 400
    if real != fake or not refused:
        COUNTS["leaks"] += 1
    assert refused, f"{name}: not refused: {real}"
    assert real == fake, f"{name}: A's object {real} vs nonexistent {fake}"


HTTP_CASES: dict[str, Callable[[httpx.Client, str], httpx.Response]] = {
    "GET session": lambda c, sid: c.get(f"/v1/sessions/{sid}"),
    "GET messages": lambda c, sid: c.get(f"/v1/sessions/{sid}/messages"),
    "DELETE session": lambda c, sid: c.delete(f"/v1/sessions/{sid}"),
    "run in session": lambda c, sid: c.post("/v1/runs", json={"template": "writer", "input": "hi", "session_id": sid}),
    "stream in session": lambda c, sid: c.post(
        "/v1/runs", json={"template": "writer", "input": "hi", "session_id": sid, "stream": True}
    ),
    "resume session": lambda c, sid: c.post(f"/v1/runs/{sid}/resume", json={"decisions": "approve"}),
    "resume session (SSE)": lambda c, sid: c.post(
        f"/v1/runs/{sid}/resume", json={"decisions": "approve", "stream": True}
    ),
    "AP list thread runs": lambda c, sid: c.get(f"/threads/{sid}/runs"),
    "AP run on thread": lambda c, sid: c.post(f"/threads/{sid}/runs", json={"assistant_id": "writer", "input": _AP_IN}),
    "AP wait on thread": lambda c, sid: c.post(
        f"/threads/{sid}/runs/wait", json={"assistant_id": "writer", "input": _AP_IN}
    ),
    "AP resume thread": lambda c, sid: c.post(
        f"/threads/{sid}/runs/wait", json={"assistant_id": "writer", "command": {"resume": "approve"}}
    ),
    "AP get thread run": lambda c, sid: c.get(f"/threads/{sid}/runs/run_00000000"),
    "AP join thread run": lambda c, sid: c.get(f"/threads/{sid}/runs/run_00000000/join"),
    "AP cancel thread run": lambda c, sid: c.post(f"/threads/{sid}/runs/run_00000000/cancel"),
    "AP delete thread run": lambda c, sid: c.delete(f"/threads/{sid}/runs/run_00000000"),
    "AP cancel runs by id": lambda c, sid: c.post("/runs/cancel", json={"thread_id": sid, "run_ids": ["run_00000000"]}),
}


@pytest.mark.parametrize("case", list(HTTP_CASES))
def test_http_objects_of_another_tenant(world: World, case: str) -> None:
    target = world.paused if case.startswith("resume") else world.session
    fake = target[:-6] + "ffffff"
    for who, token in world.outsiders.items():
        with world.server.client(token) as client:
            refused_like_nothing(f"{who} {case}", lambda sid: shape(HTTP_CASES[case](client, sid), sid), target, fake)
    with world.server.client(world.alice) as client:  # still there, untouched, for its owner
        assert client.get(f"/v1/sessions/{world.session}/messages").json()["data"][0]["content"] == "my name is Ada"


def test_listings_of_another_tenant_hold_nothing_of_it(world: World) -> None:
    """Listings are scoped by the token: asking for A's user from B gives what a nonexistent user gives."""
    for who, token in world.outsiders.items():
        with world.server.client(token) as client:
            for path in ("/v1/sessions?user={}", "/v1/usage?user={}", "/v1/usage?user={}&by=user"):
                refused_or_empty = lambda user, p=path: _listing(client.get(p.format(user)), user)  # noqa: E731
                COUNTS["cases"] += 1
                real, fake = refused_or_empty("alice"), refused_or_empty("nobody-at-all")
                if real != fake:
                    COUNTS["leaks"] += 1
                assert real == fake, f"{who} {path}: {real} vs {fake}"
            own = client.get("/v1/sessions").json()["data"]
            COUNTS["cases"] += 1
            assert all(s["tenant"] != "tenant-a" or s["user_id"] != "alice" for s in own)
            usage = client.get("/v1/usage?user=*").json()
            COUNTS["cases"] += 1
            if usage.get("tenant") == "tenant-a":  # A's other user may see only its own rows without admin
                assert usage.get("error", {}).get("code") == "permission_denied" or usage["user"] != "alice"
            else:
                assert "alice" not in json.dumps(usage)


def _listing(response: httpx.Response, user: str) -> tuple[int, str]:
    text = response.text.replace(user, "<user>")
    data = json.loads(text)
    if isinstance(data, dict):
        data.get("error", {}).pop("request_id", None)
        data.pop("spend", None)  # today's and this month's totals: compared through rows instead
    return response.status_code, json.dumps(data, sort_keys=True)


def test_dashboard_of_another_tenant_shows_nothing_of_it(world: World) -> None:
    for who in ("B admin key", "B admin JWT"):
        with world.server.client(world.outsiders[who]) as client:
            COUNTS["cases"] += 2
            data = client.get("/dashboard/data").json()
            assert data.get("tenant") != "tenant-a" and "tenant-a" not in json.dumps(data), who
            assert client.get("/dashboard/data?view=fleet").status_code == 403, who


def run_cli(world: World, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=world.env, catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_commands_on_objects_of_another_tenant(world: World) -> None:
    """The CLI acts as tenant ``default`` (runs, resume) or for the tenant it is given (keys, usage)."""
    checks: dict[str, Callable[[str], Any]] = {
        "resume": lambda sid: _cli_shape(run_cli(world, "resume", sid, "--approve"), sid),
        "keys revoke --tenant B": lambda kid: _cli_shape(
            run_cli(world, "keys", "revoke", kid, "--tenant", "tenant-b"), kid
        ),
    }
    refused_like_nothing("cli resume", checks["resume"], world.paused, world.paused[:-6] + "ffffff")
    refused_like_nothing("cli keys revoke", checks["keys revoke --tenant B"], world.alice_key_id, "0123456789abcdef")
    for args in (
        ["keys", "list", "--tenant", "tenant-b", "--json"],
        ["usage", "--tenant", "tenant-b", "--format", "json"],
    ):
        COUNTS["cases"] += 1
        code, out = run_cli(world, *args)
        assert code == 0, out
        if "alice" in out or "tenant-a" in out or world.alice_key_id in out:
            COUNTS["leaks"] += 1
        assert "alice" not in out and "tenant-a" not in out and world.alice_key_id not in out, out
    with world.server.client(world.alice) as client:  # the key was not revoked by B's attempt
        assert client.get("/v1/sessions").status_code == 200


def _cli_shape(outcome: tuple[int, str], object_id: str) -> tuple[int, str]:
    code, out = outcome
    return (400 + code if code else 0), out.replace(object_id, "<id>")


def test_another_tenant_may_use_the_same_session_id(world: World) -> None:
    """Ids are unique per tenant: B naming A's id gets a fresh session of its own (not a 409 that
    would tell B the id is taken), sees nothing of A's conversation, and deleting it leaves A's alone."""
    ask = {"template": "writer", "input": "what is my name?", "session_id": world.session}
    with world.server.client(world.outsiders["B user key"]) as client:
        created = client.post("/v1/sessions", json={"session_id": world.session, "template": "writer"})
        assert created.status_code == 201, created.text
        assert created.json()["tenant"] == "tenant-b"
        assert client.get(f"/v1/sessions/{world.session}/messages").json()["data"] == []
        answer = client.post("/v1/runs", json=ask)
        assert answer.status_code == 200, answer.text
        assert "Ada" not in answer.json()["output"]
        assert client.delete(f"/v1/sessions/{world.session}").status_code == 204
    with world.server.client(world.alice) as client:
        answer = client.post("/v1/runs", json=ask)
        assert answer.status_code == 200, answer.text
        assert answer.json()["output"] == "Your name is Ada."


CRON_CASES: dict[str, Callable[[httpx.Client, str], httpx.Response]] = {
    "GET cron": lambda c, cid: c.get(f"/v1/crons/{cid}"),
    "PATCH cron": lambda c, cid: c.patch(f"/v1/crons/{cid}", json={"enabled": False}),
    "DELETE cron": lambda c, cid: c.delete(f"/v1/crons/{cid}"),
    "GET /runs/crons": lambda c, cid: c.get(f"/runs/crons/{cid}"),
    "PATCH /runs/crons": lambda c, cid: c.patch(f"/runs/crons/{cid}", json={"enabled": False}),
    "DELETE /runs/crons": lambda c, cid: c.delete(f"/runs/crons/{cid}"),
}


def test_crons_of_another_tenant(world: World) -> None:
    """A's schedule, through both APIs: refused like a nonexistent one, and absent from every listing."""
    cron = {"template": "writer", "input": "daily notes", "schedule": "0 0 1 1 *"}
    with world.server.client(world.alice) as client:
        cron_id = client.post("/v1/crons", json=cron).json()["cron_id"]
    fake = cron_id[:-6] + "ffffff"
    for who, token in world.outsiders.items():
        with world.server.client(token) as client:
            for case, call in CRON_CASES.items():
                refused_like_nothing(
                    f"{who} {case}", lambda cid, call=call: shape(call(client, cid), cid), cron_id, fake
                )
            COUNTS["cases"] += 2
            assert cron_id not in client.get("/v1/crons").text, who
            assert cron_id not in client.post("/runs/crons/search", json={"limit": 1000}).text, who
    with world.server.client(world.alice) as client:  # untouched, for its owner
        assert client.get(f"/v1/crons/{cron_id}").json()["enabled"]
        assert client.delete(f"/v1/crons/{cron_id}").status_code == 204
