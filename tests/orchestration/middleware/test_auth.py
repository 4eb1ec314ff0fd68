"""AuthMiddleware: API keys and JWTs become a principal; scopes per template; every failure is typed."""

from __future__ import annotations

import time

import jwt
import pytest

from agent_runtime.errors import AuthenticationError, PermissionDeniedError
from agent_runtime.orchestration.middleware.auth import AuthMiddleware
from agent_runtime.security.jwt import JwtVerifier
from agent_runtime.security.keys import KeyService
from agent_runtime.security.memory import MemoryKeyStore
from agent_runtime.types import Principal
from tests.orchestration.middleware._mw_helpers import FakeRun, ctx

SECRET = "j" * 48


def token(**claims: object) -> str:
    body = {"sub": "bob", "tenant": "beta", "scope": "agents:run:*", "exp": int(time.time()) + 60, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


async def test_api_key_becomes_the_principal_and_the_credential_is_dropped(keys: KeyService) -> None:
    plaintext, record = await keys.create_key("acme", "alice", ["agents:run:writer"], rpm=7)
    inner = FakeRun()
    context = ctx(credentials=f"Bearer {plaintext}")
    result = await AuthMiddleware(keys).process(context, inner)
    assert result.output == "hello"
    seen = inner.calls[0]
    assert seen.principal is not None and (seen.tenant, seen.user) == ("acme", "alice")
    assert seen.principal.key_id == record.key_id and seen.principal.rpm == 7
    assert seen.credentials is None and context.credentials is None


@pytest.mark.parametrize("case", ["wrong", "revoked", "expired", "garbage", "missing"])
async def test_bad_credentials_are_rejected_before_the_run(case: str) -> None:
    now = [time.time()]
    keys = KeyService(MemoryKeyStore(), clock=lambda: now[0])
    plaintext, record = await keys.create_key("acme", "alice", ["*"], expires_at=now[0] + 10)
    credentials: str | None = plaintext
    if case == "wrong":
        credentials = plaintext[:-6] + "xxxxxx"
    elif case == "revoked":
        await keys.revoke_key(record.key_id)
    elif case == "expired":
        now[0] += 11
    elif case == "garbage":
        credentials = "hunter2"
    else:
        credentials = None
    inner = FakeRun()
    with pytest.raises(AuthenticationError):
        await AuthMiddleware(keys).process(ctx(credentials=credentials), inner)
    assert inner.calls == []


async def test_scope_per_template(keys: KeyService) -> None:
    plaintext, _ = await keys.create_key("acme", "alice", ["agents:run:writer"])
    auth = AuthMiddleware(keys)
    await auth.process(ctx("writer", credentials=plaintext), FakeRun())
    inner = FakeRun()
    with pytest.raises(PermissionDeniedError) as info:
        await auth.process(ctx("analyst", credentials=plaintext), inner)
    assert info.value.details == {"scope": "agents:run:analyst"} and inner.calls == []
    wildcard, _ = await keys.create_key("acme", "bob", ["agents:run:*"])
    await auth.process(ctx("analyst", credentials=wildcard), FakeRun())
    other_family, _ = await keys.create_key("acme", "carol", ["sessions", "usage", "models:override"])
    with pytest.raises(PermissionDeniedError):
        await auth.process(ctx("analyst", credentials=other_family), FakeRun())


async def test_trusted_in_process_principal_is_accepted_but_still_scoped(keys: KeyService) -> None:
    auth = AuthMiddleware(keys)
    trusted = Principal(tenant="svc", user="trigger", scopes=frozenset({"agents:run:analyst"}))
    inner = FakeRun()
    await auth.process(ctx("analyst", principal=trusted), inner)
    assert inner.calls[0].principal == trusted
    with pytest.raises(PermissionDeniedError):
        await auth.process(ctx("writer", principal=trusted), FakeRun())


async def test_credentials_override_a_principal_set_by_the_caller(keys: KeyService) -> None:
    plaintext, _ = await keys.create_key("acme", "alice", ["*"])
    forged = Principal(tenant="victim", user="root", scopes=frozenset({"*"}))
    inner = FakeRun()
    await AuthMiddleware(keys).process(ctx(credentials=plaintext, principal=forged), inner)
    assert inner.calls[0].tenant == "acme"


async def test_jwt_bearer_tokens(keys: KeyService) -> None:
    auth = AuthMiddleware(keys, JwtVerifier(secret=SECRET))
    inner = FakeRun()
    await auth.process(ctx(credentials=f"Bearer {token()}"), inner)
    assert (inner.calls[0].tenant, inner.calls[0].user) == ("beta", "bob")
    for bad in (token(exp=int(time.time()) - 5), token(scope="agents:run:other") + "x", jwt.encode({"a": 1}, "k" * 40)):
        with pytest.raises(AuthenticationError):
            await auth.process(ctx(credentials=bad), FakeRun())
    with pytest.raises(PermissionDeniedError):
        await auth.process(ctx(credentials=token(scope="agents:run:other")), FakeRun())


async def test_jwt_refused_without_a_verifier(keys: KeyService) -> None:
    with pytest.raises(AuthenticationError, match="not accepted"):
        await AuthMiddleware(keys).process(ctx(credentials=token()), FakeRun())


async def test_accepts_a_bare_key_store() -> None:
    store = MemoryKeyStore()
    plaintext, _ = await KeyService(store).create_key("acme", "alice", ["*"])
    inner = FakeRun()
    await AuthMiddleware(store).process(ctx(credentials=plaintext), inner)
    assert inner.calls[0].user == "alice"
