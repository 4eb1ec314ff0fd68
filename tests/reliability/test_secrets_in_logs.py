"""No API key, JWT or signing secret ever shows up in logs or error bodies.

Two sinks: a served worker at DEBUG (its access log, uvicorn's own log and the JSON logging middleware
output, all captured from its stdout and stderr) and the library in process (every record caplog sees,
before any handler's redaction). Each is driven through successful runs (JSON, SSE, OpenAI-compatible,
sessions, usage, dashboard login), failures and authentication errors with every credential the test
made; then every key, every key's secret part, every JWT and its signature is searched for.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from click.testing import CliRunner

from agent_runtime.cli import main as cli
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext
from tests.reliability.conftest import record

JWT_SECRET = "secrets-test-" + "q" * 40
COUNTS = {"secrets": 0, "requests": 0, "found": 0}


def fragments(secret: str) -> list[str]:
    """The secret and the part of it that alone would let someone in (a key's secret, a JWT's signature)."""
    if secret.startswith("ar_"):
        return [secret, secret.split("_", 2)[2]]
    if secret.count(".") == 2:
        return [secret, secret.rsplit(".", 1)[1]]
    return [secret]


def assert_nothing_leaked(text: str, secrets: list[str], where: str) -> None:
    COUNTS["secrets"] = max(COUNTS["secrets"], len(secrets))
    leaked = [s for s in secrets for part in fragments(s) if part and part in text]
    COUNTS["found"] += len(leaked)
    assert not leaked, f"{len(leaked)} secret(s) in {where}, e.g. {leaked[0][:12]}..."


def make_jwt(**claims: Any) -> str:
    base = {"sub": "jay", "tenant": "acme", "scope": "agents:run:* admin", "exp": 4_102_444_800}
    return pyjwt.encode({**base, **claims}, JWT_SECRET, algorithm="HS256")


def mutate(key: str) -> str:
    return key[:-1] + ("A" if key[-1] != "A" else "B")


def drive(url: str, good: list[str], bad: list[str]) -> list[str]:
    """Every kind of request with every credential; returns the error bodies (they are scanned too)."""
    bodies: list[str] = []

    def call(method: str, path: str, token: str | None, **kwargs: Any) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=url, timeout=30) as client:
            response = client.request(method, path, headers=headers | kwargs.pop("headers", {}), **kwargs)
        COUNTS["requests"] += 1
        if response.status_code >= 400:  # error bodies; a 200 may echo what the caller itself sent
            bodies.append(response.text)
        assert response.status_code < 500, (path, response.text)

    for token in good:
        call("POST", "/v1/runs", token, json={"template": "writer", "input": "hello there"})
        call("POST", "/v1/runs", token, json={"template": "writer", "input": "hello", "stream": True})
        call(
            "POST",
            "/v1/chat/completions",
            token,
            json={"model": "writer", "messages": [{"role": "user", "content": "hi"}]},
        )
        call("POST", "/v1/runs", token, json={"template": "analyst", "input": f"what is 2+2? my key is {token}"})
        session = httpx.post(f"{url}/v1/sessions", headers={"Authorization": f"Bearer {token}"}, json={}).json()
        call(
            "POST",
            "/v1/runs",
            token,
            json={"template": "writer", "input": "my name is Ada", "session_id": session["id"]},
        )
        call("GET", f"/v1/sessions/{session['id']}/messages", token)
        call("GET", "/v1/usage", token)
        call("GET", "/dashboard/data", token)
        call("POST", "/dashboard/login", None, data={"key": token})
        # failures after authentication
        call("POST", "/v1/runs", token, json={"template": "no-such-template", "input": token})
        call("POST", "/v1/runs", token, json={"template": "writer", "input": "a" * 40_000})
        call("POST", "/v1/runs", token, json={"template": "writer", "input": f"{token}\u0000"})
        call("POST", "/v1/runs", token, json={"template": "writer", "input": "hi", "session_id": "ses_missing"})
        call("POST", "/v1/runs", token, json={"template": "writer", "input": "hi", "model": f"openai:{token}"})
        call("POST", "/v1/runs", token, json={"template": 7, "input": {"key": token}})
        call(
            "POST",
            "/v1/runs",
            token,
            content=b'{"template": "writer", "input": "' + token.encode() + b'"',
            headers={"Content-Type": "application/json"},
        )
        call("GET", "/v1/sessions", token, headers={"X-Request-Id": token[:120]})
    for token in bad:  # authentication errors
        call("GET", "/v1/sessions", token)
        call("POST", "/v1/runs", token, json={"template": "writer", "input": "hi", "stream": True})
        call("POST", "/dashboard/login", None, data={"key": token})
        call("GET", "/dashboard/data", None, headers={"Cookie": f"agent_runtime_dashboard={token}"})
    return bodies


def cli_key(env: dict[str, str], tenant: str, user: str) -> str:
    result = CliRunner().invoke(
        cli,
        ["keys", "create", "--tenant", tenant, "--user", user, "--scope", "agents:run:*", "--scope", "admin"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


@pytest.mark.timeout(300)
def test_served_worker_logs_no_secret(worker_factory: Any, tmp_path: Path) -> None:
    env = {
        "AGENT_RUNTIME_STATE_BACKEND": "sqlite",
        "AGENT_RUNTIME_LOG_LEVEL": "DEBUG",
        "AGENT_RUNTIME_LOG_INPUTS": "true",
        "AGENT_RUNTIME_JWT_SECRET": JWT_SECRET,
    }
    worker = worker_factory(env)
    cli_env = {"AGENT_RUNTIME_STATE_BACKEND": "sqlite", "AGENT_RUNTIME_DATA_DIR": str(worker.data_dir)}
    keys = [cli_key(cli_env, "acme", "alice"), cli_key(cli_env, "globex", "bob")]
    revoked = cli_key(cli_env, "acme", "gone")
    result = CliRunner().invoke(cli, ["keys", "revoke", revoked.split("_")[1]], env=cli_env)
    assert result.exit_code == 0, result.output
    jwts = [make_jwt(), make_jwt(tenant="globex")]
    bad = [
        revoked,
        mutate(keys[0]),
        make_jwt(exp=1),
        pyjwt.encode({"sub": "x", "tenant": "acme", "exp": 4_102_444_800}, "w" * 40, algorithm="HS256"),
        pyjwt.encode({"sub": "x", "tenant": "acme", "exp": 4_102_444_800}, None, algorithm="none"),
        make_jwt(tenant="a b*"),
    ]
    bodies = drive(worker.url, [*keys, *jwts], bad)
    secrets = [worker.admin_key, *keys, revoked, *jwts, *bad, JWT_SECRET]
    worker.stop()
    logs = worker.logs()
    assert "POST /v1/runs" in logs, "the access log was not captured"
    assert '"event": "run"' in logs, "the JSON run log was not captured"
    assert_nothing_leaked(logs, secrets, "the server's output")
    assert_nothing_leaked("\n".join(bodies), secrets, "error bodies")
    record("secrets_served", secrets=len(secrets), requests=COUNTS["requests"], found=COUNTS["found"])


async def test_library_records_hold_no_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(state_backend="memory", data_dir=tmp_path, jwt_secret=JWT_SECRET, log_inputs=True)
    runtime = await Runtime.create(settings, collect_events=True)
    messages: list[str] = []
    try:
        key, _ = await runtime.keys.create_key("acme", "alice", ["agents:run:*", "sessions", "usage"])
        revoked, record_ = await runtime.keys.create_key("acme", "old", ["agents:run:*", "sessions", "usage"])
        await runtime.keys.revoke_key(record_.key_id)
        jwt_token = make_jwt()
        good, bad = [key, f"Bearer {jwt_token}"], [revoked, mutate(key), make_jwt(exp=1), mutate(jwt_token)]
        for credentials in good + bad:
            for template, text in (
                ("writer", "hello"),
                ("writer", f"remember {credentials}"),
                ("nope", credentials),
                ("writer", "x" * 40_000 + credentials),
            ):
                context = AgentContext(input=text, template=template, credentials=credentials)
                try:
                    await runtime.executor.execute_async(context)
                except AgentRuntimeError as exc:
                    messages.append(f"{exc.message} {exc.details}")
                stream = runtime.executor.execute_stream(context.model_copy(update={"credentials": credentials}))
                messages += [str(event.data) async for event in stream if event.type == "error"]
    finally:
        await runtime.aclose()
    secrets = [key, revoked, jwt_token, *bad, JWT_SECRET]
    records = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert '"run"' in records or "'event': 'run'" in records, "no run records were captured"
    assert_nothing_leaked(records, secrets, "log records")
    assert_nothing_leaked("\n".join(messages), [key, revoked, jwt_token, JWT_SECRET], "error messages and events")
    record("secrets_library", secrets=len(secrets), records=len(caplog.records))
