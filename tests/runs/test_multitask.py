"""Double-texting through real runtimes: background runs on one session with each ``multitask_strategy``,
on SQLite (one process) and on a real redis-server shared by two runtimes (two workers); cancel with
``action: rollback``; the checkpoints each leaves in the session's LangGraph thread."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from agent_runtime.cli import main
from agent_runtime.errors import RunNotFoundError, SessionBusyError
from agent_runtime.runs import QueueFullError, Run, RunDispatcher, RunFilter
from agent_runtime.runs.recorder import new_run
from agent_runtime.runs.webhooks import SIGNATURE_HEADER
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal
from tests.helpers import until, until_sync
from tests.runs.webhook_receiver import SECRET, Receiver, expected_signature
from tests.server.conftest import LiveServer, ServeProcess

ACME = Principal(tenant="acme", user="ana", scopes=frozenset({"agents:run:*", "sessions"}))
BOB = Principal(tenant="acme", user="bob", scopes=frozenset({"agents:run:*", "sessions"}))
OTHER = Principal(tenant="other", user="oli", scopes=frozenset({"agents:run:*", "sessions"}))
RUNS = {"max_concurrent_runs": 4, "lease_s": 2.0, "heartbeat_s": 0.2, "scan_s": 0.1}
SLOW = "write a long story about rain " * 4
Make = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def make_runtime(tmp_path: Path) -> AsyncIterator[Make]:
    made: list[Runtime] = []

    async def make(start: bool = True, **overrides: Any) -> Runtime:
        options: dict[str, Any] = {
            "state_backend": "sqlite",
            "data_dir": tmp_path,
            "offline_token_latency_ms": 30,
            "runs": RUNS,
        }
        rt = await Runtime.create(Settings(**(options | overrides)))
        made.append(rt)
        if start:
            await rt.start_dispatcher()
        return rt

    yield make
    for rt in reversed(made):
        await rt.aclose()


def dispatcher(rt: Runtime) -> RunDispatcher:
    assert rt.dispatcher is not None
    return rt.dispatcher


async def session(rt: Runtime, principal: Principal = ACME, session_id: str = "ses_1") -> str:
    await rt.sessions.create_session(principal.user or "local", tenant=principal.tenant, session_id=session_id)
    return session_id


def ctx(session_id: str | None, text: str = SLOW, principal: Principal = ACME) -> AgentContext:
    return AgentContext(input=text, template="writer", session_id=session_id, principal=principal)


async def running(d: RunDispatcher, run: Run) -> Run:
    return await until(lambda: _status(d, run, "running"), f"{run.run_id} running")


async def _status(d: RunDispatcher, run: Run, status: str) -> Run | None:
    got = await d.store.get(run.run_id)
    return got if got is not None and got.status == status else None


async def run_ids_in_thread(rt: Runtime, session_id: str, principal: Principal = ACME) -> set[str]:
    """The run ids found in the metadata of the session thread's checkpoints."""
    ses = await rt.sessions.get_session(session_id, tenant=principal.tenant, user_id=principal.user)
    saver = await rt.sessions.saver()
    found = [t async for t in saver.alist({"configurable": {"thread_id": ses.key}})]
    return {str(t.metadata["run_id"]) for t in found if t.metadata and "run_id" in t.metadata}


async def test_reject_is_the_default_and_leaves_no_record(make_runtime: Make) -> None:
    rt = await make_runtime()
    d, sid = dispatcher(rt), await session(rt)
    first = await d.submit(ctx(sid))
    with pytest.raises(SessionBusyError) as refused:
        await d.submit(ctx(sid, "hello"))
    assert refused.value.status_code == 409 and refused.value.details["active_run_ids"] == [first.run_id]
    assert [r.run_id for r in await d.store.find(RunFilter(tenant="acme", session_id=sid))] == [first.run_id]
    assert (await d.wait(first.run_id, "acme", timeout_s=30)).status == "success"
    later = await d.submit(ctx(sid, "hello"), multitask="reject")  # idle again: accepted
    assert (await d.wait(later.run_id, "acme", timeout_s=30)).status == "success"


async def test_another_tenants_or_users_session_of_the_same_id_is_not_ours(make_runtime: Make) -> None:
    rt = await make_runtime()
    d = dispatcher(rt)
    ours, theirs, bobs = await session(rt), await session(rt, OTHER), await session(rt, BOB)
    mine = await d.submit(ctx(ours))
    other = await d.submit(ctx(theirs, "hello", principal=OTHER))  # same session id, other tenant: not busy
    bob = await d.submit(ctx(bobs, "hello", principal=BOB))  # same tenant, another user's session
    assert (await d.wait(other.run_id, "other", timeout_s=30)).status == "success"
    assert (await d.wait(bob.run_id, "acme", timeout_s=30)).status == "success"
    with pytest.raises(RunNotFoundError):
        await d.cancel(mine.run_id, "other")
    assert (await d.wait(mine.run_id, "acme", timeout_s=30)).status == "success"


def _in_order(runs: list[Run]) -> None:
    assert all(r.status == "success" for r in runs), [(r.run_id, r.status, r.error) for r in runs]
    for before, after in itertools.pairwise(runs):
        assert before.ended_at is not None and after.started_at is not None
        assert before.ended_at <= after.started_at, "runs of one session overlapped or ran out of order"


async def test_enqueue_runs_one_after_the_other_in_submission_order(make_runtime: Make) -> None:
    rt = await make_runtime()
    d, sid = dispatcher(rt), await session(rt)
    submitted = [await d.submit(ctx(sid, f"story {i} " * 10), multitask="enqueue") for i in range(4)]
    other = await d.submit(ctx(None, "meanwhile"))  # another session's run is not held back
    assert (await d.wait(other.run_id, "acme", timeout_s=30)).status == "success"
    _in_order([await d.wait(r.run_id, "acme", timeout_s=60) for r in submitted])
    assert await run_ids_in_thread(rt, sid) >= {r.run_id for r in submitted}


async def test_enqueue_keeps_the_order_across_two_workers(make_runtime: Make, redis_url: str) -> None:
    shared = {"state_backend": "redis", "redis_url": redis_url}
    first, second = await make_runtime(**shared), await make_runtime(**shared)
    sid = await session(first)
    submitted = [
        await dispatcher(rt).submit(ctx(sid, f"story {i} " * 8), multitask="enqueue")
        for i, rt in enumerate([first, second, first, second, first, second])
    ]
    ended = [await dispatcher(first).wait(r.run_id, "acme", timeout_s=60) for r in submitted]
    _in_order(ended)
    assert len({r.worker for r in ended}) >= 1


async def test_parked_runs_are_bounded_and_back_up_into_the_queue(make_runtime: Make) -> None:
    rt = await make_runtime(runs=RUNS | {"max_queued_runs": 2})
    d, sid = dispatcher(rt), await session(rt)
    assert d.worker is not None
    gate = d.worker.gate
    blocker = new_run(ctx(sid, "a foreground run"), status="running", background=False)  # busy until we end it
    await d.store.create(blocker)
    runs = [await d.submit(ctx(sid, f"parked {i}"), multitask="enqueue") for i in range(2)]
    await until(lambda: len(gate) == 2 and gate.full, "the gate holding its bound")
    runs += [await d.submit(ctx(sid, f"queued {i}"), multitask="enqueue") for i in range(2)]  # wait in the queue
    with pytest.raises(QueueFullError):
        await d.submit(ctx(sid, "one too many"), multitask="enqueue")
    assert all(r.status == "pending" for r in [await d.get(r.run_id, "acme") for r in runs])
    await d.store.transition(blocker.run_id, ("running",), status="success", ended_at=time.time())
    _in_order([await d.wait(r.run_id, "acme", timeout_s=60) for r in runs])


async def test_interrupt_cancels_the_active_run_and_keeps_its_checkpoints(make_runtime: Make) -> None:
    rt = await make_runtime()
    d, sid = dispatcher(rt), await session(rt)
    active = await running(d, await d.submit(ctx(sid)))
    queued = await d.submit(ctx(sid, "second " * 5), multitask="enqueue")
    new = await d.submit(ctx(sid, "never mind"), multitask="interrupt")
    done = await d.wait(new.run_id, "acme", timeout_s=30)
    assert done.status == "success"
    cancelled = await d.get(active.run_id, "acme")
    assert cancelled.status == "cancelled" and cancelled.cancel_action == "interrupt"
    assert cancelled.ended_at is not None and done.started_at is not None and cancelled.ended_at <= done.started_at
    assert (await d.get(queued.run_id, "acme")).status == "cancelled"  # every earlier active run
    assert {active.run_id, new.run_id} <= await run_ids_in_thread(rt, sid)


async def test_rollback_drops_the_active_runs_checkpoints_and_record(make_runtime: Make) -> None:
    rt = await make_runtime()
    d, sid = dispatcher(rt), await session(rt)
    kept = await d.submit(ctx(sid, "hello"))
    assert (await d.wait(kept.run_id, "acme", timeout_s=30)).status == "success"
    active = await running(d, await d.submit(ctx(sid)))
    await until(lambda: _has_run(rt, sid, active.run_id), "the active run's first checkpoint")
    new = await d.submit(ctx(sid, "start over"), multitask="rollback")
    assert (await d.wait(new.run_id, "acme", timeout_s=30)).status == "success"
    with pytest.raises(RunNotFoundError):
        await d.get(active.run_id, "acme")
    assert await run_ids_in_thread(rt, sid) == {kept.run_id, new.run_id}
    state = await rt.sessions.get_messages(sid, tenant="acme", user_id="ana")
    assert SLOW.strip() not in [str(m.get("content", "")).strip() for m in state]


async def _has_run(rt: Runtime, sid: str, run_id: str) -> bool:
    return run_id in await run_ids_in_thread(rt, sid)


async def test_cancel_with_rollback_from_another_process(make_runtime: Make, redis_url: str) -> None:
    shared = {"state_backend": "redis", "redis_url": redis_url}
    worker = await make_runtime(**shared)
    api = await make_runtime(start=False, **shared)  # no worker: the run executes in ``worker``
    d, sid = dispatcher(worker), await session(worker)
    kept = await d.submit(ctx(sid, "hello"))
    assert (await d.wait(kept.run_id, "acme", timeout_s=30)).status == "success"
    active = await running(d, await d.submit(ctx(sid)))
    await until(lambda: _has_run(worker, sid, active.run_id), "the active run's first checkpoint")
    flagged = await dispatcher(api).cancel(active.run_id, "acme", "rollback")
    assert flagged.cancel_requested and flagged.cancel_action == "rollback"
    await until(lambda: _gone(d, active.run_id), "the rolled-back record to go")
    assert await run_ids_in_thread(worker, sid) == {kept.run_id}


async def _gone(d: RunDispatcher, run_id: str) -> bool:
    return await d.store.get(run_id) is None


async def test_cancel_with_rollback_of_a_pending_run(make_runtime: Make) -> None:
    rt = await make_runtime()
    d, sid = dispatcher(rt), await session(rt)
    active = await running(d, await d.submit(ctx(sid)))
    waiting = await d.submit(ctx(sid, "later"), multitask="enqueue")
    answered = await d.cancel(waiting.run_id, "acme", "rollback")
    assert answered.status == "cancelled"
    assert await d.store.get(waiting.run_id) is None
    assert (await d.wait(active.run_id, "acme", timeout_s=30)).status == "success"


async def test_after_seconds_holds_a_run_until_due(make_runtime: Make) -> None:
    rt = await make_runtime()
    d = dispatcher(rt)
    later = await d.submit(ctx(None, "hello"), after_s=0.5)
    assert later.not_before is not None and later.not_before == pytest.approx(later.created_at + 0.5)
    done = await d.wait(later.run_id, "acme", timeout_s=30)
    assert done.status == "success" and done.started_at is not None and done.started_at >= later.not_before


# -- over HTTP ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str, str]]:
    settings = Settings(
        state_backend="sqlite", data_dir=tmp_path_factory.mktemp("multitask"), offline_token_latency_ms=15, runs=RUNS
    )
    server = LiveServer(settings).start()
    scopes = ["agents:run:*", "sessions"]
    yield server, server.key("acme", "ana", scopes), server.key("other", "oli", scopes)
    server.stop()


def _post_run(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/v1/runs", json={"template": "writer", "input": SLOW} | body)


def _until_status(http: httpx.Client, run_id: str, *statuses: str | int) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        answer = http.get(f"/v1/runs/{run_id}")
        run = answer.json() if answer.status_code == 200 else {"status": answer.status_code}
        return run if run["status"] in statuses else None

    return dict(until_sync(probe, f"run {run_id} in {statuses}"))


def test_http_strategies_cancel_actions_and_refusals(served: tuple[LiveServer, str, str]) -> None:
    server, ana, oli = served
    with server.client(ana) as http, server.client(oli) as eve:
        sid = http.post("/v1/sessions", json={"template": "writer"}).json()["id"]
        first = _post_run(http, session_id=sid, background=True).json()
        busy = _post_run(http, session_id=sid, background=True)
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "session_busy"
        queued = _post_run(http, session_id=sid, background=True, multitask_strategy="enqueue")
        assert queued.status_code == 202 and queued.json()["status"] == "pending"
        queued_id = queued.json()["run_id"]
        assert eve.post(f"/v1/runs/{queued_id}/cancel", json={"action": "rollback"}).status_code == 404
        bad = http.post(f"/v1/runs/{queued_id}/cancel", json={"action": "undo"})
        assert bad.status_code == 422
        rolled = http.post(f"/v1/runs/{queued_id}/cancel", json={"action": "rollback"})
        assert rolled.status_code == 200 and rolled.json()["status"] == "cancelled"
        assert http.get(f"/v1/runs/{queued_id}").status_code == 404
        _until_status(http, first["run_id"], "running")
        newer = _post_run(http, input="hello", session_id=sid, background=True, multitask_strategy="interrupt")
        assert newer.status_code == 202
        assert _until_status(http, first["run_id"], "cancelled")["cancel_action"] == "interrupt"
        assert _until_status(http, newer.json()["run_id"], "success")["status"] == "success"
        # a foreground run waits for the session's queued run to end (enqueue), then runs
        later = _post_run(http, input="again", session_id=sid, background=True).json()
        answer = _post_run(http, input="and now", session_id=sid, multitask_strategy="enqueue")
        assert answer.status_code == 200 and http.get(f"/v1/runs/{later['run_id']}").json()["status"] == "success"
        refusals = [
            _post_run(http, multitask_strategy="sometimes"),
            _post_run(http, multitask_strategy="enqueue"),  # needs a session
            _post_run(http, webhook="https://hooks.example/x"),  # needs background
            _post_run(http, background=True, after_seconds=-1),
            _post_run(http, background=True, webhook="https://hooks.example/x"),  # none allowed on this server
        ]
        assert [r.status_code for r in refusals] == [422] * 5
        params = [r.json()["error"]["param"] for r in refusals]
        assert params[1:] == ["multitask_strategy", "webhook", "after_seconds", "webhook"], params


def _client_on(server: ServeProcess, key: str, avoid: int | None) -> tuple[httpx.Client, int]:
    """A keep-alive client whose connection landed on a worker process other than ``avoid`` (the second
    process may still be starting: tried until the deadline)."""

    def connect() -> tuple[httpx.Client, int] | None:
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        pid = int(http.get("/healthz").json()["pid"])
        if pid != avoid:
            return http, pid
        http.close()
        return None

    found: tuple[httpx.Client, int] = until_sync(connect, "a connection to the other worker process", timeout=60)
    return found


def _messages(http: httpx.Client, sid: str) -> list[str]:
    return [str(m["content"]) for m in http.get(f"/v1/sessions/{sid}/messages").json()["data"]]


@pytest.mark.timeout(300)
def test_two_serve_processes_order_interrupt_and_roll_back(redis_url: str, tmp_path: Path, receiver: Receiver) -> None:
    config = tmp_path / "config.yaml"  # a secret from a config file must reach the worker processes unmasked
    webhooks = {"allowed_hosts": ["127.0.0.1"], "secret": SECRET, "allow_http": True}
    config.write_text(json.dumps({"runs": {"webhooks": webhooks}}), encoding="utf-8")  # JSON is YAML
    env = {
        "AGENT_RUNTIME_STATE_BACKEND": "redis",
        "AGENT_RUNTIME_REDIS_URL": redis_url,
        "AGENT_RUNTIME_DATA_DIR": str(tmp_path),
        "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
        "AGENT_RUNTIME_OFFLINE_TOKEN_LATENCY_MS": "15",
        "AGENT_RUNTIME_CONFIG_FILE": str(config),
    } | {f"AGENT_RUNTIME_RUNS__{name.upper()}": str(value) for name, value in RUNS.items()}
    server = ServeProcess(env, workers=2)
    try:
        key = server.admin_key(timeout=120)
        server.wait_ready(timeout=120)
        first, pid = _client_on(server, key, None)
        second, pid2 = _client_on(server, key, pid)
        by_pid = {pid: first, pid2: second}
        try:
            sid = first.post("/v1/sessions", json={"template": "writer"}).json()["id"]
            hook = {"webhook": receiver.url("/served"), "multitask_strategy": "enqueue"}
            ids = [
                _post_run(http, input=f"turn {i} " * 8, session_id=sid, background=True, **hook).json()["run_id"]
                for i, http in enumerate([first, second] * 3)
            ]
            ended = [Run.model_validate(first.get(f"/v1/runs/{run_id}/wait?timeout=60").json()) for run_id in ids]
            _in_order(ended)
            posted = until_sync(lambda: len(receiver.on("/served")) == len(ids) and receiver.on("/served"), "webhooks")
            assert {json.loads(d.body)["run_id"] for d in posted} == set(ids)
            signed = [expected_signature("default", d.headers[SIGNATURE_HEADER], d.body) for d in posted]  # admin's
            assert all(signed)

            def elsewhere(run_id: str) -> httpx.Client:
                """The client on the process that does not execute ``run_id``: its cancel goes by the record."""
                worker = _until_status(first, run_id, "running")["worker"]
                return next(http for p, http in by_pid.items() if not worker.endswith(f":{p}"))

            interrupted = _post_run(first, input="first long story " * 4, session_id=sid, background=True).json()
            other = elsewhere(interrupted["run_id"])
            newer = _post_run(other, input="instead", session_id=sid, background=True, multitask_strategy="interrupt")
            assert _until_status(first, newer.json()["run_id"], "success")
            assert _until_status(first, interrupted["run_id"], "cancelled")["cancel_action"] == "interrupt"
            assert "first long story" in " ".join(_messages(first, sid))  # its progress was kept

            doomed = _post_run(first, input="doomed story " * 4, session_id=sid, background=True).json()
            other = elsewhere(doomed["run_id"])
            until_sync(lambda: "doomed story" in " ".join(_messages(first, sid)), "the doomed run's checkpoint")
            flagged = other.post(f"/v1/runs/{doomed['run_id']}/cancel", json={"action": "rollback"})
            assert flagged.status_code == 200 and flagged.json()["cancel_action"] == "rollback"
            _until_status(first, doomed["run_id"], 404)
            assert "doomed story" not in " ".join(_messages(first, sid))
            assert "instead" in " ".join(_messages(first, sid))
        finally:
            first.close()
            second.close()
    finally:
        assert server.terminate() in (0, -15)


def test_cli_cancel_with_rollback(served: tuple[LiveServer, str, str]) -> None:
    server, ana, _ = served
    with server.client(ana) as http:
        sid = http.post("/v1/sessions", json={"template": "writer"}).json()["id"]
        first = _post_run(http, session_id=sid, background=True).json()
        queued = _post_run(http, session_id=sid, background=True, multitask_strategy="enqueue").json()
        env = {"AGENT_RUNTIME_URL": server.url, "AGENT_RUNTIME_API_KEY": ana}
        answer = CliRunner().invoke(main, ["runs", "cancel", queued["run_id"], "--action", "rollback"], env=env)
        assert answer.exit_code == 0, answer.output
        assert json.loads(answer.output)["status"] == "cancelled"
        assert http.get(f"/v1/runs/{queued['run_id']}").status_code == 404
        refused = CliRunner().invoke(main, ["runs", "cancel", first["run_id"], "--action", "undo"], env=env)
        assert refused.exit_code != 0
        assert _until_status(http, first["run_id"], "success")
