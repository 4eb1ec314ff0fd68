"""``/v1/crons`` over real HTTP (uvicorn, SQLite files): create, list, get, patch, delete, isolation, bad input,
and a tick that really starts a background run charged to the schedule's creator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from agent_runtime.runs.webhooks import SIGNATURE_HEADER
from agent_runtime.settings import Settings
from tests.helpers import until_sync
from tests.runs.webhook_receiver import SECRET, Receiver, expected_signature
from tests.server.conftest import LiveServer

CRON = {"template": "writer", "input": "write a haiku", "schedule": "*/5 * * * *", "timezone": "Europe/Paris"}


@dataclass
class Keys:
    alice: str
    bob: str
    admin: str
    eve: str
    writer_only: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    webhooks = {"allowed_hosts": ["127.0.0.1"], "secret": SECRET, "allow_http": True}
    settings = Settings(
        state_backend="sqlite",
        data_dir=tmp_path_factory.mktemp("crons"),
        crons={"max_per_tenant": 5, "poll_s": 3600},
        runs={"webhooks": webhooks},
    )
    server = LiveServer(settings).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keys(live: LiveServer) -> Keys:
    return Keys(
        alice=live.key("acme", "alice", ["agents:run:*", "sessions"]),
        bob=live.key("acme", "bob", ["agents:run:*", "sessions"]),
        admin=live.key("acme", "root", ["admin"]),
        eve=live.key("evil", "eve", ["admin"]),
        writer_only=live.key("acme", "carol", ["agents:run:writer"]),
    )


def test_create_list_get_patch_delete(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as alice:
        created = alice.post("/v1/crons", json=CRON | {"metadata": {"team": "docs"}})
        assert created.status_code == 201, created.text
        cron = created.json()
        assert cron["user"] == "alice" and cron["timezone"] == "Europe/Paris" and cron["enabled"]
        assert cron["next_run_at"] > cron["created_at"] and "principal" not in cron
        cron_id = cron["cron_id"]
        assert alice.get(f"/v1/crons/{cron_id}").json() == cron
        listed = alice.get("/v1/crons", params={"template": "writer"}).json()
        assert cron_id in [c["cron_id"] for c in listed["crons"]]
        patched = alice.patch(f"/v1/crons/{cron_id}", json={"enabled": False, "schedule": "0 9 * * 1"})
        assert patched.status_code == 200 and not patched.json()["enabled"]
        assert patched.json()["schedule"] == "0 9 * * 1"
        assert cron_id not in [c["cron_id"] for c in alice.get("/v1/crons", params={"enabled": True}).json()["crons"]]
        assert alice.delete(f"/v1/crons/{cron_id}").status_code == 204
        assert alice.get(f"/v1/crons/{cron_id}").status_code == 404
        assert alice.delete(f"/v1/crons/{cron_id}").status_code == 404


def test_another_users_or_tenants_cron_is_404(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as alice, live.client(keys.bob) as bob, live.client(keys.eve) as eve:
        cron_id = alice.post("/v1/crons", json=CRON).json()["cron_id"]
        for other in (bob, eve):
            assert other.get(f"/v1/crons/{cron_id}").status_code == 404
            assert other.patch(f"/v1/crons/{cron_id}", json={"enabled": False}).status_code == 404
            assert other.delete(f"/v1/crons/{cron_id}").status_code == 404
            assert cron_id not in [c["cron_id"] for c in other.get("/v1/crons").json()["crons"]]
        with live.client(keys.admin) as admin:  # the tenant's admin sees its users' schedules
            assert admin.get(f"/v1/crons/{cron_id}").status_code == 200
        assert alice.delete(f"/v1/crons/{cron_id}").status_code == 204


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        pytest.param({"schedule": "every day"}, 422, "schedule", id="bad-cron"),
        pytest.param({"schedule": "*/5 * * * * *"}, 422, "schedule", id="six-fields"),
        pytest.param({"timezone": "Mars/Olympus_Mons"}, 422, "timezone", id="bad-tz"),
        pytest.param({"template": "no-such-template"}, 404, None, id="unknown-template"),
        pytest.param({"model": "gpt-4o"}, 422, None, id="unknown-field"),
    ],
)
def test_bad_input(live: LiveServer, keys: Keys, change: dict[str, str], status: int, param: str | None) -> None:
    with live.client(keys.alice) as alice:
        answer = alice.post("/v1/crons", json=CRON | change)
    assert answer.status_code == status, answer.text
    if param is not None:
        assert answer.json()["error"]["param"] == param


def test_scopes_of_a_run_are_needed(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.writer_only) as carol:
        assert carol.post("/v1/crons", json=CRON | {"template": "analyst"}).status_code == 403
        assert carol.post("/v1/crons", json=CRON | {"session_id": "ses_carol"}).status_code == 403
        made = carol.post("/v1/crons", json=CRON)
        assert made.status_code == 201
        assert carol.delete(f"/v1/crons/{made.json()['cron_id']}").status_code == 204
    with live.client() as anonymous:
        assert anonymous.get("/v1/crons").status_code == 401


def test_schedules_per_tenant_are_bounded(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.eve) as eve:
        made = [eve.post("/v1/crons", json=CRON) for _ in range(5)]
        assert [m.status_code for m in made] == [201] * 5
        assert eve.post("/v1/crons", json=CRON).status_code == 409
        for answer in made:
            assert eve.delete(f"/v1/crons/{answer.json()['cron_id']}").status_code == 204


def test_a_tick_starts_a_background_run_as_the_creator(live: LiveServer, keys: Keys) -> None:
    assert live.runtime is not None and live.runtime.cron_scheduler is not None
    scheduler = live.runtime.cron_scheduler
    with live.client(keys.alice) as alice:
        cron = alice.post("/v1/crons", json=CRON | {"session_id": "ses_cron_alice"}).json()
        scheduler.clock = lambda: cron["next_run_at"] + 1.0  # the tick has come
        ticks = live.call(scheduler.run_due())
        run_ids = [t.run_id for t in ticks if t.cron_id == cron["cron_id"]]
        assert len(run_ids) == 1 and run_ids[0] is not None
        run = alice.get(f"/v1/runs/{run_ids[0]}/wait", params={"timeout": 60}).json()
        assert run["status"] == "success", run["error"]
        assert run["user"] == "alice" and run["session_id"] == "ses_cron_alice"
        assert run["metadata"]["source"] == "cron"
        assert all(t.cron_id != cron["cron_id"] for t in live.call(scheduler.run_due()))  # fired once
        stored = alice.get(f"/v1/crons/{cron['cron_id']}").json()
        assert stored["last_run_id"] == run_ids[0] and stored["next_run_at"] > cron["next_run_at"]
        assert alice.delete(f"/v1/crons/{cron['cron_id']}").status_code == 204


def test_a_revoked_key_disables_its_schedules(live: LiveServer, keys: Keys) -> None:
    assert live.runtime is not None and live.runtime.cron_scheduler is not None
    scheduler, runtime = live.runtime.cron_scheduler, live.runtime
    key = live.key("acme", "dave", ["agents:run:*"])
    with live.client(key) as dave:
        cron = dave.post("/v1/crons", json=CRON).json()
    record = next(k for k in live.call(runtime.keys.list_keys("acme")) if k.user == "dave")
    live.call(runtime.keys.revoke_key(record.key_id))
    scheduler.clock = lambda: cron["next_run_at"] + 1.0
    ticks = [t for t in live.call(scheduler.run_due()) if t.cron_id == cron["cron_id"]]
    assert len(ticks) == 1 and ticks[0].run_id is None
    with live.client(keys.admin) as admin:
        stored = admin.get(f"/v1/crons/{cron['cron_id']}").json()
        assert not stored["enabled"] and stored["last_error"]["code"] == "key_revoked"
        assert admin.delete(f"/v1/crons/{cron['cron_id']}").status_code == 204


def test_cli_create_list_delete(live: LiveServer, keys: Keys) -> None:
    from click.testing import CliRunner

    from agent_runtime.cli import main

    def cli(*args: str) -> Any:
        return CliRunner().invoke(main, ["crons", "--url", live.url, "--api-key", keys.bob, *args])

    made = cli("create", "writer", "daily notes", "--schedule", "0 9 * * 1-5", "--timezone", "Asia/Tokyo")
    assert made.exit_code == 0, made.output
    cron = json.loads(made.stdout)
    assert cron["schedule"] == "0 9 * * 1-5" and cron["timezone"] == "Asia/Tokyo" and cron["user"] == "bob"
    listed = cli("list", "--enabled")
    assert listed.exit_code == 0 and cron["cron_id"] in [c["cron_id"] for c in json.loads(listed.stdout)["crons"]]
    assert json.loads(cli("get", cron["cron_id"]).stdout) == cron
    assert json.loads(cli("delete", cron["cron_id"]).stdout) == {"deleted": cron["cron_id"]}
    gone = cli("delete", cron["cron_id"])
    assert gone.exit_code == 2 and gone.stderr.startswith("error [not_found]: ")
    bad = cli("create", "writer", "x", "--schedule", "0 25 * * *")
    assert bad.exit_code == 2 and bad.stderr.startswith("error [validation_error]: schedule")


def test_a_ticks_run_follows_the_schedules_multitask_strategy_and_webhook(
    live: LiveServer, keys: Keys, receiver: Receiver
) -> None:
    assert live.runtime is not None and live.runtime.cron_scheduler is not None
    scheduler = live.runtime.cron_scheduler
    with live.client(keys.alice) as alice:
        refused = alice.post("/v1/crons", json=CRON | {"webhook": "https://elsewhere.example/hook"})
        assert refused.status_code == 422 and refused.json()["error"]["param"] == "webhook"
        body = CRON | {"session_id": "ses_cron_hooked", "multitask_strategy": "enqueue", "webhook": receiver.url()}
        cron = alice.post("/v1/crons", json=body).json()
        assert cron["multitask_strategy"] == "enqueue" and cron["webhook"] == receiver.url()
        scheduler.clock = lambda: cron["next_run_at"] + 1.0
        (tick,) = [t for t in live.call(scheduler.run_due()) if t.cron_id == cron["cron_id"]]
        assert tick.run_id is not None, tick
        (delivery,) = until_sync(lambda: receiver.on("/hook"), "the webhook delivery", timeout=60)
        assert expected_signature("acme", delivery.headers[SIGNATURE_HEADER], delivery.body)
        posted = json.loads(delivery.body)
        assert posted["run_id"] == tick.run_id and posted["status"] == "success"
        unhooked = alice.patch(f"/v1/crons/{cron['cron_id']}", json={"webhook": None}).json()
        assert unhooked["webhook"] is None and unhooked["multitask_strategy"] == "enqueue"
        assert alice.delete(f"/v1/crons/{cron['cron_id']}").status_code == 204
