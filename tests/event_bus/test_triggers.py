"""Trigger rules and the trigger handler: events start real runs through the whole middleware chain."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import ConfigurationError, ValidationError
from agent_runtime.event_bus import ConsumerRegistry, ConsumerRunner, Event, MemoryDedupe, make_event
from agent_runtime.event_bus.trigger_handler import TriggerHandler, TriggerRule, load_rules, parse_rules
from agent_runtime.event_bus.trigger_rules import render_input
from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings

from .conftest import eventually

UPLOADS: dict[str, Any] = {
    "name": "uploads",
    "event": "document.uploaded",
    "template": "analyst",
    "input": "{payload.text}",
}


def rule(**changes: Any) -> TriggerRule:
    return TriggerRule.model_validate({**UPLOADS, **changes})


def doc(payload: dict[str, Any] | None = None, **fields: Any) -> Event:
    return make_event("document.uploaded", {"text": "what is 17*23+4?"} if payload is None else payload, **fields)


# -- rules ------------------------------------------------------------------------------------------
def test_rules_load_from_yaml_and_toml(tmp_path: Path) -> None:
    yaml_file = tmp_path / "rules.yaml"
    yaml_file.write_text(
        "triggers:\n"
        "  - name: uploads\n"
        "    event: document.uploaded\n"
        "    filter: [{path: payload.kind, equals: pdf}]\n"
        "    template: analyst\n"
        "    input: 'Analyse {payload.text}'\n"
        "    session: per-event\n"
    )
    toml_file = tmp_path / "rules.toml"
    toml_file.write_text(
        '[[triggers]]\nname = "uploads"\nevent = "document.*"\ntemplate = "analyst"\ninput = "{payload.text}"\n'
        '[triggers.session]\nmode = "field"\nfield = "payload.sid"\n'
    )
    (from_yaml,) = load_rules(yaml_file)
    assert from_yaml.session.mode == "per-event" and from_yaml.filter[0].equals == "pdf"
    (from_toml,) = load_rules(toml_file)
    assert from_toml.is_glob and from_toml.session.field == "payload.sid"
    assert load_rules(tmp_path / "rules.yaml") == [from_yaml]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"input": "{payload.text!r}"}, id="conversion"),
        pytest.param({"input": "{payload.text:>999999999}"}, id="format-spec"),
        pytest.param({"input": "{payload[0]}"}, id="indexing"),
        pytest.param({"input": "{0}"}, id="positional"),
        pytest.param({"input": "{text}"}, id="unknown-root"),
        pytest.param({"input": "{payload.text"}, id="unbalanced"),
        pytest.param({"name": "Bad Name"}, id="name"),
        pytest.param({"event": "Document uploaded"}, id="event"),
        pytest.param({"template": "a b"}, id="template"),
        pytest.param({"filter": [{"path": "payload.x"}]}, id="filter-without-test"),
        pytest.param({"filter": [{"path": "payload.x", "equals": 1, "exists": True}]}, id="filter-two-tests"),
        pytest.param({"session": {"mode": "fixed"}}, id="fixed-without-id"),
        pytest.param({"session": {"mode": "fixed", "id": "a*b"}}, id="fixed-bad-id"),
        pytest.param({"session": "sometimes"}, id="unknown-session"),
        pytest.param({"unknown": 1}, id="extra-key"),
    ],
)
def test_invalid_rules_fail_at_load_time(change: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="is invalid"):
        parse_rules({"triggers": [{**UPLOADS, **change}]})


def test_bad_files_are_configuration_errors(tmp_path: Path) -> None:
    (tmp_path / "dup.yaml").write_text("triggers:\n" + f"  - {UPLOADS}\n" * 2)
    (tmp_path / "broken.yaml").write_text("triggers: [\n")
    (tmp_path / "rules.txt").write_text("{}")
    for name in ("dup.yaml", "broken.yaml", "rules.txt", "missing.yaml"):
        with pytest.raises(ConfigurationError):
            load_rules(tmp_path / name)


def test_filters_and_types_match_on_dotted_paths() -> None:
    event = doc({"text": "hi", "kind": "pdf", "tags": ["urgent"], "meta": {"lang": "en", "size": 3}}, source="crm")
    assert rule(filter=[{"path": "payload.meta.lang", "equals": "en"}]).matches(event, "default")
    assert rule(filter=[{"path": "payload.meta.size", "equals": 3}]).matches(event, "default")
    assert not rule(filter=[{"path": "payload.kind", "equals": "doc"}]).matches(event, "default")
    assert rule(filter=[{"path": "payload.tags", "contains": "urgent"}]).matches(event, "default")
    assert rule(filter=[{"path": "payload.text", "contains": "h"}]).matches(event, "default")
    assert not rule(filter=[{"path": "payload.meta.size", "contains": 3}]).matches(event, "default")
    assert rule(filter=[{"path": "payload.meta", "exists": True}, {"path": "payload.x", "exists": False}]).matches(
        event, "default"
    )
    assert not rule(filter=[{"path": "payload.text.length", "exists": True}]).matches(event, "default")
    assert rule(filter=[{"path": "event.source", "equals": "crm"}]).matches(event, "default")
    assert rule(event="document.*").matches(event, "default")
    assert not rule(event="run.*").matches(event, "default")
    assert not rule(enabled=False).matches(event, "default")
    # events of another tenant never start runs for this one; tenant-less events match any rule
    assert not rule().matches(doc(tenant="other"), "default")
    assert rule(tenant="other").matches(doc(tenant="other"), "default")


def test_input_templates_read_only_dict_keys() -> None:
    event = doc({"text": "hi", "n": 3, "obj": {"a": [1, 2]}})
    assert render_input("{payload.text}/{payload.n}/{payload.obj}/{{lit}}", event) == 'hi/3/{"a": [1, 2]}/{lit}'
    assert render_input("{event.type} {event.id}", event) == f"document.uploaded {event.id}"
    for missing in ("{payload.nope}", "{payload.text.upper}", "{payload.__class__}"):
        with pytest.raises(ValidationError):
            render_input(missing, event)


def test_session_policies() -> None:
    event = doc({"text": "x", "sid": "ses_chosen", "bad": "a b", "num": 7})
    assert rule().session_for(event) is None
    per_event = rule(session="per-event")
    assert per_event.session_for(event) == per_event.session_for(event) != per_event.session_for(doc())
    assert rule(session={"mode": "fixed", "id": "ses_f"}).session_for(event) == "ses_f"
    assert rule(session={"mode": "field", "field": "payload.sid"}).session_for(event) == "ses_chosen"
    assert rule(session={"mode": "field", "field": "payload.num"}).session_for(event) == "7"
    for field in ("payload.bad", "payload.none"):
        with pytest.raises(ValidationError):
            rule(session={"mode": "field", "field": field}).session_for(event)


# -- the handler, end to end --------------------------------------------------------------------------
@pytest.fixture(params=[pytest.param("memory", id="memory"), pytest.param("redis", marks=pytest.mark.redis)])
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings: dict[str, Any] = {"state_backend": "memory", "data_dir": tmp_path, "event_bus": request.param}
    if request.param == "redis":
        settings["redis_url"] = request.getfixturevalue("redis_url")
        settings["events"] = {"namespace": f"t{uuid.uuid4().hex[:10]}", "claim_min_idle_s": 1.0}
    rt = await Runtime.create(Settings(**settings))
    yield rt
    await rt.aclose()


class Worker:
    """A trigger handler consuming through ``ConsumerRunner``, plus a group recording every event."""

    def __init__(self, runtime: Runtime, rules: list[TriggerRule], **options: Any) -> None:
        self.bus = runtime.event_bus
        self.handler = TriggerHandler(runtime.executor, rules, **options)
        registry = ConsumerRegistry()
        self.handler.register(registry, backoff_s=0.01)
        self.runner = ConsumerRunner(self.bus, "workers", registry, shutdown_timeout_s=10)
        self.events: list[Event] = []

    async def _record(self, event: Event) -> None:
        self.events.append(event)

    async def __aenter__(self) -> Worker:
        await self.bus.subscribe("audit", self._record)
        await self.runner.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.stop()

    def of(self, type: str) -> list[Event]:
        return [e for e in self.events if e.type == type]


async def test_document_upload_starts_an_analyst_run(runtime: Runtime) -> None:
    async with Worker(runtime, [rule()]) as worker:
        upload = doc()
        await runtime.event_bus.publish(upload)
        await eventually(lambda: len(worker.of("run.completed")) == 1)
        (completed,) = worker.of("run.completed")
        (started,) = worker.of("run.started")
    assert "395" in completed.payload["output"] and completed.payload["template"] == "analyst"
    assert completed.payload["tool_calls"] == 1 and completed.payload["usage"]["total_tokens"] > 0
    assert (completed.depth, completed.correlation_id, completed.tenant) == (1, upload.id, "default")
    assert started.payload["user"] == "trigger:uploads"  # the rule's own service principal
    assert completed.run_id == rule().run_id_for(upload)
    assert worker.handler.stats.completed == 1 and worker.handler.results[completed.run_id].output


async def test_self_triggering_rule_stops_at_the_depth_limit(runtime: Runtime) -> None:
    again = rule(name="again", event="run.completed", input="what is {payload.tool_calls}+1?")
    async with Worker(runtime, [rule(), again], max_depth=3) as worker:
        upload = doc()
        await runtime.event_bus.publish(upload)
        await eventually(lambda: worker.handler.stats.depth_limited == 1)
        stats = worker.handler.stats
        runs = worker.of("run.completed")
    # upload -> run (depth 1) -> run (depth 2) -> run (depth 3); run.completed at depth 3 triggers nothing
    assert sorted(e.depth for e in runs) == [1, 2, 3]
    assert {e.correlation_id for e in runs} == {upload.id}
    assert (stats.started, stats.completed, stats.failed) == (3, 3, 0)
    assert "2" in max(runs, key=lambda e: e.depth).payload["output"]


async def test_rule_scopes_are_enforced_by_the_auth_middleware(runtime: Runtime) -> None:
    no_scope = rule(name="sneaky", scopes=["agents:run:writer"])
    async with Worker(runtime, [no_scope]) as worker:
        await runtime.event_bus.publish(doc())
        await eventually(lambda: len(worker.of("run.failed")) == 1)
    assert worker.of("run.failed")[0].payload["error_code"] == "permission_denied"
    assert worker.handler.stats.failed == 1 and not worker.of("run.completed")


async def test_unusable_events_and_duplicates_do_not_run(runtime: Runtime) -> None:
    handler = TriggerHandler(runtime.executor, [rule()], dedupe=MemoryDedupe())
    upload = doc()
    await handler(upload)
    await handler(upload)  # at-least-once redelivery: the same (rule, event) runs once
    await handler(doc({"no_text": 1}))
    await handler(doc(tenant="elsewhere"))
    stats = handler.stats
    assert (stats.started, stats.completed, stats.duplicates, stats.invalid, stats.matched) == (1, 1, 1, 1, 3)


async def test_session_policy_continues_a_conversation(runtime: Runtime) -> None:
    fixed = rule(name="chat", input="{payload.text}", session={"mode": "fixed", "id": "ses_inbox"})
    handler = TriggerHandler(runtime.executor, [fixed])
    await handler(doc({"text": "what is 2*3?"}))
    await handler(doc({"text": "what is 4*5?"}))
    assert handler.stats.completed == 2
    session = await runtime.sessions.get_session("ses_inbox", tenant="default", user_id="trigger:chat")
    messages = await runtime.sessions.get_messages(session.id)
    assert [m["content"] for m in messages if m["role"] == "user"] == ["what is 2*3?", "what is 4*5?"]


def test_subscription_is_as_narrow_as_the_rules() -> None:
    assert TriggerHandler(None, [rule()]).subscription() == {"types": {"document.uploaded"}}  # type: ignore[arg-type]
    globbed = TriggerHandler(None, [rule(event="document.*")])  # type: ignore[arg-type]
    assert globbed.subscription() == {"pattern": "document.*"}
    mixed = TriggerHandler(None, [rule(), rule(name="b", event="run.*")])  # type: ignore[arg-type]
    assert mixed.subscription() == {}
    with pytest.raises(ValidationError):
        TriggerHandler(None, [rule(), rule()])  # type: ignore[arg-type]
