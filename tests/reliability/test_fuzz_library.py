"""Hostile input to the library entry points (hypothesis): only the runtime's own typed 4xx errors.

Executor contexts (inputs, template names, session ids, credentials, timeouts), template configs,
session ids on the memory and Redis stores (no key may land outside the runtime's namespace), API
key strings and JWTs (a token is either a valid principal with storage-safe ids, or a 401).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_runtime._redis import check_key_part
from agent_runtime.agents.templates import AgentTemplate
from agent_runtime.errors import AgentRuntimeError, AuthenticationError
from agent_runtime.runtime import Runtime
from agent_runtime.security.jwt import JwtVerifier
from agent_runtime.security.keys import KeyService
from agent_runtime.security.memory import MemoryKeyStore
from agent_runtime.server.routes.runs import error_from_event
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal
from tests.reliability.conftest import record, size

EXAMPLES = size(150, 3000)
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)
TRIED = {"inputs": 0, "server_errors": 0}
SECRET = "library-fuzz-" + "k" * 40
PRINCIPAL = Principal(tenant="fuzz", user="fuzzer", scopes=frozenset({"agents:run:*"}))

hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cs", "Zs", "So"]), max_size=30),
    st.sampled_from(["*", "a*", "{x}", "x\r\nFLUSHALL", "../../etc", "ses_" + "a" * 300, "", " ", "\x00", "\ud800"]),
)


@pytest.fixture(scope="module", autouse=True)
def _count() -> Iterator[None]:
    yield
    record("fuzz_library", inputs=TRIED["inputs"], server_errors=TRIED["server_errors"])


def expect_client_error(exc: BaseException) -> None:
    """The only acceptable failure: one of our typed errors with a 4xx status."""
    TRIED["inputs"] += 1
    if not isinstance(exc, AgentRuntimeError) or exc.status_code >= 500:
        TRIED["server_errors"] += 1
        raise AssertionError(f"{type(exc).__name__}: {exc}") from exc


@pytest.fixture(scope="module")
def runtime_loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.Runner, Runtime, str]]:
    with asyncio.Runner() as runner:
        settings_ = Settings(state_backend="memory", data_dir=tmp_path_factory.mktemp("fuzz-lib"), log_level="WARNING")
        runtime = runner.run(Runtime.create(settings_))
        key, _ = runner.run(runtime.keys.create_key("fuzz", "fuzzer", ["agents:run:*", "sessions", "usage"]))
        yield runner, runtime, key
        runner.run(runtime.aclose())


@SETTINGS
@given(
    text=hostile_text,
    template=st.one_of(st.sampled_from(["writer", "analyst", "searcher"]), hostile_text),
    session_id=st.one_of(st.none(), hostile_text),
    create=st.booleans(),
    timeout_s=st.one_of(
        st.none(), st.floats(min_value=2, max_value=5)
    ),  # a deadline that passes is a 504, not bad input
    auth=st.sampled_from(["principal", "key", "garbage"]),
    garbage=hostile_text,
    stream=st.booleans(),
)
def test_executor_inputs(
    runtime_loop: Any,
    text: str,
    template: str,
    session_id: str | None,
    create: bool,
    timeout_s: float | None,
    auth: str,
    garbage: str,
    stream: bool,
) -> None:
    runner, runtime, key = runtime_loop
    try:
        context = AgentContext(
            input=text,
            template=template,
            session_id=session_id,
            timeout_s=timeout_s,
            principal=PRINCIPAL if auth == "principal" else None,
            credentials={"key": key, "garbage": garbage}.get(auth),
            metadata={"create_session": create},
        )
    except ValueError:
        TRIED["inputs"] += 1
        return  # the context itself refused it (pydantic), before anything ran

    async def go() -> None:
        if not stream:
            await runtime.executor.execute_async(context)
            return
        events = [e async for e in runtime.executor.execute_stream(context)]
        if events[-1].type == "error":  # a stream reports its failure as an event: rebuild the typed error
            raise error_from_event(events[-1].data)

    try:
        runner.run(go())
        TRIED["inputs"] += 1
    except BaseException as exc:
        expect_client_error(exc)


template_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=20,
)
TEMPLATE_FIELDS = list(AgentTemplate.model_fields)


@SETTINGS
@given(
    data=st.dictionaries(st.one_of(st.sampled_from(TEMPLATE_FIELDS), hostile_text), template_values, max_size=8),
    name=st.one_of(st.just("fuzzed"), hostile_text),
)
def test_template_configs(runtime_loop: Any, data: dict[str, Any], name: str) -> None:
    _, runtime, _ = runtime_loop
    config = {"name": name, **data}
    try:
        template = runtime.factory.register_template(config, replace=True)
        runtime.factory.unregister_template(template.name)
        TRIED["inputs"] += 1
    except BaseException as exc:
        expect_client_error(exc)


@pytest.fixture
def redis_runtime(redis_url: str, tmp_path: Path) -> Iterator[tuple[asyncio.Runner, Runtime, str]]:
    with asyncio.Runner() as runner:
        settings_ = Settings(state_backend="redis", redis_url=redis_url, data_dir=tmp_path)
        runtime = runner.run(Runtime.create(settings_, with_event_bus=False))
        yield runner, runtime, redis_url
        runner.run(runtime.aclose())


@pytest.mark.redis
def test_session_ids_cannot_escape_the_key_namespace(redis_runtime: Any) -> None:
    runner, runtime, url = redis_runtime
    sessions = runtime.sessions

    @SETTINGS
    @given(
        session_id=hostile_text,
        tenant=hostile_text,
        user=hostile_text,
        op=st.sampled_from(["create", "get", "delete", "messages"]),
    )
    def fuzz(session_id: str, tenant: str, user: str, op: str) -> None:
        calls = {
            "create": lambda: sessions.create_session(user, tenant=tenant, session_id=session_id),
            "get": lambda: sessions.get_session(session_id, tenant=tenant, user_id=user),
            "delete": lambda: sessions.delete_session(session_id, tenant=tenant, user_id=user),
            "messages": lambda: sessions.get_messages(session_id, tenant=tenant, user_id=user),
        }
        try:
            runner.run(calls[op]())
            TRIED["inputs"] += 1
        except BaseException as exc:
            expect_client_error(exc)

    fuzz()
    client = redis.Redis.from_url(url)
    try:
        keys = [k.decode("utf-8", "replace") for k in client.scan_iter(count=1000)]
    finally:
        client.close()
    prefix = runtime.settings.redis.key_prefix
    outside = [k for k in keys if not k.startswith(prefix + ":") and not k.startswith(("checkpoint", "write"))]
    assert not outside, f"keys outside the {prefix!r} namespace: {outside[:10]}"
    for key in keys:  # one {hash tag} per key is the runtime's own (Redis Cluster slots); ids never hold braces
        assert key.count("{") <= 1 and key.count("}") <= 1, f"an id brought braces into key {key!r}"
        assert not set(key) & set("*?[] \r\n\x00"), f"unsafe character in key {key!r}"


@pytest.mark.parametrize("timeout_s", [-1.0, 0.0, float("nan"), float("inf")])
def test_non_positive_timeout_is_refused_as_bad_input(runtime_loop: Any, timeout_s: float) -> None:
    runner, runtime, _ = runtime_loop
    context = AgentContext(input="hi", template="writer", principal=PRINCIPAL, timeout_s=timeout_s)
    with pytest.raises(AgentRuntimeError) as caught:
        runner.run(runtime.executor.execute_async(context))
    assert caught.value.status_code == 422


def test_lone_surrogates_are_refused_as_bad_input(runtime_loop: Any) -> None:
    runner, runtime, _ = runtime_loop
    context = AgentContext(input="hi \ud800 there", template="writer", principal=PRINCIPAL)
    with pytest.raises(AgentRuntimeError) as caught:
        runner.run(runtime.executor.execute_async(context))
    assert caught.value.status_code == 422


@SETTINGS
@given(token=st.one_of(hostile_text, st.text(min_size=40, max_size=80).map(lambda s: "ar_" + s)), data=st.data())
def test_api_key_strings(token: str, data: st.DataObject) -> None:
    service = KeyService(MemoryKeyStore())

    async def go() -> None:
        real, _ = await service.create_key("fuzz", "fuzzer", ["agents:run:*", "sessions", "usage"])
        chars = list(real)
        index = data.draw(st.integers(0, len(chars) - 1))
        replacement = data.draw(st.characters(codec="utf-8"))  # the key is random: draw independently of it
        chars[index] = replacement if replacement != chars[index] else "!"
        surrogate = real[:-1] + "\ud800"  # a str that UTF-8 cannot encode
        for candidate in (token, "".join(chars), real + data.draw(st.text(min_size=1, max_size=5)), surrogate):
            try:
                await service.authenticate(candidate)
                raise AssertionError(f"{candidate!r} authenticated")
            except AuthenticationError:
                TRIED["inputs"] += 1

    asyncio.run(go())


def b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value, default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


claims = st.fixed_dictionaries(
    {},
    optional={
        "sub": template_values,
        "tenant": template_values,
        "exp": st.one_of(st.integers(), st.floats(allow_nan=False), st.just(4_102_444_800), hostile_text),
        "scope": template_values,
        "scopes": template_values,
        "rpm": template_values,
        "monthly_usd": template_values,
        "iss": template_values,
    },
)


@SETTINGS
@given(
    payload=claims,
    header=st.dictionaries(st.sampled_from(["alg", "typ", "kid", "jku", "x5u", "crit"]), template_values, max_size=4),
    how=st.sampled_from(["signed", "unsigned", "alg none", "raw"]),
    raw=hostile_text,
)
def test_jwts(payload: dict[str, Any], header: dict[str, Any], how: str, raw: str) -> None:
    verifier = JwtVerifier(secret=SECRET)
    if how == "signed":
        try:
            token = pyjwt.encode(
                payload, SECRET, algorithm="HS256", headers={k: v for k, v in header.items() if k != "alg"}
            )
        except (TypeError, ValueError, pyjwt.PyJWTError):  # PyJWT would not even make it
            return
    elif how == "alg none":
        token = f"{b64({'alg': 'none'})}.{b64(payload)}."
    elif how == "unsigned":
        token = f"{b64(header)}.{b64(payload)}.{b64(b'sig')}"
    else:
        token = raw
    TRIED["inputs"] += 1
    try:
        principal = verifier.verify(token)
    except AuthenticationError:
        return
    assert how == "signed", f"unsigned token accepted: {token}"
    check_key_part(principal.tenant)
    check_key_part(principal.user)
