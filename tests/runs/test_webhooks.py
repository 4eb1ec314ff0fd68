"""Webhooks through a real runtime and a real HTTP receiver (``http.server`` on a free port): the signed
POST of a finished run checked by the receiver with its own HMAC, retried after a 500, given up after
``max_attempts`` or a 4xx, and recorded on the run; the allow-list (no private IP literal unless
listed) refused with 422 at submission; each tenant's key signs only its own runs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import ValidationError
from agent_runtime.runs import Run, RunDispatcher
from agent_runtime.runs.webhooks import SIGNATURE_HEADER, tenant_secret, verify
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal
from tests.conftest import free_port
from tests.helpers import until, until_sync
from tests.runs.webhook_receiver import SECRET, Receiver, expected_signature
from tests.server.conftest import LiveServer

ACME = Principal(tenant="acme", user="ana", scopes=frozenset({"agents:run:*"}))
OTHER = Principal(tenant="other", user="oli", scopes=frozenset({"agents:run:*"}))


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    webhooks = {
        "allowed_hosts": ["127.0.0.1", "*.hooks.example"],
        "secret": SECRET,
        "allow_http": True,
        "backoff_s": 0.05,
        "backoff_max_s": 0.2,
        "max_attempts": 3,
    }
    settings = Settings(state_backend="sqlite", data_dir=tmp_path, runs={"webhooks": webhooks, "scan_s": 0.1})
    rt = await Runtime.create(settings)
    await rt.start_dispatcher()
    yield rt
    await rt.aclose()


def dispatcher(rt: Runtime) -> RunDispatcher:
    assert rt.dispatcher is not None
    return rt.dispatcher


def ctx(principal: Principal = ACME) -> AgentContext:
    return AgentContext(input="a poem about rain", template="writer", principal=principal)


async def delivered(d: RunDispatcher, run: Run, tenant: str = "acme") -> Run:
    async def outcome() -> Run | None:
        got = await d.get(run.run_id, tenant)
        return got if got.webhook_delivery is not None and got.webhook_delivery.status != "pending" else None

    return await until(outcome, f"the webhook outcome of {run.run_id}")


async def test_a_finished_run_is_posted_signed_and_retried_after_a_500(runtime: Runtime, receiver: Receiver) -> None:
    receiver.script = [500]
    d = dispatcher(runtime)
    run = await d.submit(ctx(), webhook=receiver.url())
    assert run.webhook == receiver.url()
    ended = await delivered(d, run)
    assert ended.webhook_delivery is not None
    assert (ended.webhook_delivery.status, ended.webhook_delivery.attempts) == ("delivered", 2)
    assert ended.webhook_delivery.last_status == 200 and ended.webhook_delivery.delivered_at is not None
    first, second = receiver.on("/hook")
    assert (first.answered, second.answered) == (500, 200)
    for attempt in (first, second):
        assert expected_signature("acme", attempt.headers[SIGNATURE_HEADER], attempt.body)
        assert attempt.headers["X-Agent-Runtime-Run-Id"] == run.run_id
    posted = json.loads(second.body)
    assert posted["run_id"] == run.run_id and posted["status"] == "success"
    assert posted["output"] == ended.output and posted["usage"] == ended.usage
    assert "principal" not in posted and "webhook_delivery" not in posted


async def test_a_receiver_that_keeps_failing_is_given_up_on(runtime: Runtime, receiver: Receiver) -> None:
    receiver.script = [500, 503, 500, 500]
    d = dispatcher(runtime)
    ended = await delivered(d, await d.submit(ctx(), webhook=receiver.url("/down")))
    assert ended.webhook_delivery is not None
    assert (ended.webhook_delivery.status, ended.webhook_delivery.attempts) == ("failed", 3)
    assert ended.webhook_delivery.last_status == 500 and ended.webhook_delivery.last_error == "HTTP 500"
    assert len(receiver.on("/down")) == 3


async def test_a_4xx_answer_is_not_retried(runtime: Runtime, receiver: Receiver) -> None:
    receiver.script = [404]
    d = dispatcher(runtime)
    ended = await delivered(d, await d.submit(ctx(), webhook=receiver.url("/gone")))
    assert ended.webhook_delivery is not None
    assert (ended.webhook_delivery.status, ended.webhook_delivery.attempts) == ("failed", 1)
    assert len(receiver.on("/gone")) == 1


async def test_an_unreachable_receiver_is_recorded_without_a_status(runtime: Runtime) -> None:
    d = dispatcher(runtime)
    ended = await delivered(d, await d.submit(ctx(), webhook=f"http://127.0.0.1:{free_port()}/nobody"))
    assert ended.webhook_delivery is not None
    assert ended.webhook_delivery.status == "failed" and ended.webhook_delivery.last_status is None
    assert ended.webhook_delivery.last_error


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example.com/hook",  # not listed
        "http://10.0.0.7/hook",  # a private IP literal
        "http://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
        "http://[::1]/hook",  # loopback, but only 127.0.0.1 is listed
        "http://127.0.0.2/hook",
        "http://hooks.example/hook",  # the wildcard covers subdomains only
        "http://user:pw@127.0.0.1/hook",  # credentials in the URL
        "ftp://127.0.0.1/hook",
        "http://127.0.0.1:99999/hook",
        "not a url",
    ],
)
async def test_hosts_outside_the_allow_list_are_refused_at_submission(runtime: Runtime, url: str) -> None:
    d = dispatcher(runtime)
    with pytest.raises(ValidationError) as refused:
        await d.submit(ctx(), webhook=url)
    assert refused.value.status_code == 422 and refused.value.details["param"] == "webhook"
    assert await d.store.pending() == []


async def test_a_wildcard_entry_allows_its_subdomains(runtime: Runtime) -> None:
    d = dispatcher(runtime)
    assert d.webhooks is not None
    assert d.webhooks.check("http://a.hooks.example/x") == "http://a.hooks.example/x"
    assert d.webhooks.check("https://b.c.hooks.example:8443/x")


async def test_https_only_unless_http_is_allowed(tmp_path: Path) -> None:
    webhooks = {"allowed_hosts": ["hooks.example"], "secret": SECRET}
    rt = await Runtime.create(Settings(state_backend="memory", data_dir=tmp_path, runs={"webhooks": webhooks}))
    try:
        await rt.start_dispatcher()
        d = dispatcher(rt)
        with pytest.raises(ValidationError):
            await d.submit(ctx(), webhook="http://hooks.example/x")
        assert (await d.submit(ctx(), webhook="https://hooks.example/x")).webhook == "https://hooks.example/x"
    finally:
        await rt.aclose()


async def test_without_an_allow_list_webhooks_are_refused(tmp_path: Path) -> None:
    rt = await Runtime.create(Settings(state_backend="memory", data_dir=tmp_path))
    try:
        await rt.start_dispatcher()
        with pytest.raises(ValidationError) as refused:
            await dispatcher(rt).submit(ctx(), webhook="https://hooks.example/x")
        assert refused.value.details["param"] == "webhook"
    finally:
        await rt.aclose()


def test_a_secret_is_required_with_an_allow_list() -> None:
    with pytest.raises(ValueError, match="secret"):
        Settings(runs={"webhooks": {"allowed_hosts": ["hooks.example"]}})


async def test_each_tenant_signs_with_its_own_key(runtime: Runtime, receiver: Receiver) -> None:
    d = dispatcher(runtime)
    ours = await delivered(d, await d.submit(ctx(), webhook=receiver.url("/acme")))
    theirs = await delivered(d, await d.submit(ctx(OTHER), webhook=receiver.url("/other")), tenant="other")
    assert ours.webhook_delivery is not None and theirs.webhook_delivery is not None
    (mine,), (other,) = receiver.on("/acme"), receiver.on("/other")
    acme_key, other_key = tenant_secret(SECRET, "acme"), tenant_secret(SECRET, "other")
    assert acme_key != other_key
    assert verify(acme_key, mine.headers[SIGNATURE_HEADER], mine.body)
    assert verify(other_key, other.headers[SIGNATURE_HEADER], other.body)
    assert not verify(acme_key, other.headers[SIGNATURE_HEADER], other.body)
    assert not verify(acme_key, mine.headers[SIGNATURE_HEADER], mine.body + b" ")
    assert json.loads(other.body)["tenant"] == "other"
    stale = mine.headers[SIGNATURE_HEADER]
    assert not verify(acme_key, stale, mine.body, now=int(stale.split(",")[0][2:]) + 3_600)


def test_over_http_a_webhook_is_delivered_and_shown_on_the_run(tmp_path: Path, receiver: Receiver) -> None:
    receiver.script = [500]
    webhooks = {"allowed_hosts": ["127.0.0.1"], "secret": SECRET, "allow_http": True, "backoff_s": 0.05}
    server = LiveServer(Settings(state_backend="sqlite", data_dir=tmp_path, runs={"webhooks": webhooks})).start()
    try:
        with server.client(server.key("acme", "ana", ["agents:run:*"])) as http:
            body = {"template": "writer", "input": "hello", "background": True}
            refused = http.post("/v1/runs", json=body | {"webhook": "http://192.168.1.1/hook"})
            assert refused.status_code == 422 and refused.json()["error"]["param"] == "webhook"
            run = http.post("/v1/runs", json=body | {"webhook": receiver.url("/http")}).json()

            def shown() -> dict[str, Any] | None:
                got = http.get(f"/v1/runs/{run['run_id']}").json()
                return got if (got.get("webhook_delivery") or {}).get("status") == "delivered" else None

            got = until_sync(shown, "the delivery shown on the run")
            assert got["webhook"] == receiver.url("/http") and got["webhook_delivery"]["attempts"] == 2
            assert [d.answered for d in receiver.on("/http")] == [500, 200]
            last = receiver.on("/http")[-1]
            assert expected_signature("acme", last.headers[SIGNATURE_HEADER], last.body)
            assert json.loads(last.body)["status"] == "success"
    finally:
        server.stop()


async def test_a_run_cancelled_before_it_started_is_posted_too(runtime: Runtime, receiver: Receiver) -> None:
    d = dispatcher(runtime)
    run = await d.submit(ctx(), webhook=receiver.url("/early"), after_s=60)  # pending for a minute
    assert (await d.cancel(run.run_id, "acme")).status == "cancelled"
    ended = await delivered(d, run)
    assert ended.webhook_delivery is not None and ended.webhook_delivery.status == "delivered"
    (posted,) = receiver.on("/early")
    assert json.loads(posted.body)["status"] == "cancelled"
