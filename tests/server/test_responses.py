"""OpenAI's Responses API (``/v1/responses``) with the official ``openai`` client against a served worker:
plain and streamed responses, ``previous_response_id`` continuing a conversation, ``instructions``,
refused parameters (400 in OpenAI's shape naming them), tenant isolation, and the usage ledger."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from agent_runtime.agents.templates import AgentTemplate
from tests.helpers import until_sync
from tests.server.conftest import Keys, LiveServer, ServeProcess, sse_json
from tests.server.test_workers import _client_on_worker
from tests.workflows.conftest import gated_template, recording_tool


def _client(live: LiveServer, key: str) -> OpenAI:
    return OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0)


def test_create_answers_with_a_response_object(live: LiveServer, keys: Keys) -> None:
    response = _client(live, keys.alice).responses.create(model="writer", input="write a haiku about the sea")
    assert response.object == "response" and response.id.startswith("resp_") and response.status == "completed"
    assert response.model == "writer" and response.output_text.strip()
    message = response.output[0]
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    usage = response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    with live.client(keys.alice) as http:  # the response is a run like any other, recorded under its id
        record = http.get("/v1/runs/run_" + response.id.removeprefix("resp_"))
    assert record.status_code == 200 and record.json()["output"] == response.output_text


def test_get_and_delete_a_stored_response(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.alice)
    created = client.responses.create(model="writer", input="hello there", metadata={"topic": "greeting"})
    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == created.output_text
    assert fetched.metadata == {"topic": "greeting"} and fetched.usage == created.usage
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_store_false_keeps_nothing(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.alice)
    created = client.responses.create(model="writer", input="hello there", store=False)
    assert created.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_previous_response_id_continues_the_conversation(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.bob)
    first = client.responses.create(model="writer", input="my name is Ada")
    second = client.responses.create(model="writer", input="what is my name?", previous_response_id=first.id)
    assert "Ada" in second.output_text and second.previous_response_id == first.id
    alone = client.responses.create(model="writer", input="what is my name?")
    assert "Ada" not in alone.output_text  # the name came from the stored conversation, nowhere else
    third = client.responses.create(model="writer", input="and what is my name now?", previous_response_id=second.id)
    assert "Ada" in third.output_text  # the chain reaches back through every stored response


def test_input_messages_and_instructions_reach_the_agent(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.alice)
    history: Any = [
        {"role": "user", "content": [{"type": "input_text", "text": "my name is Grace"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi Grace."}]},
        {"role": "user", "content": "what is my name?"},
    ]
    assert "Grace" in client.responses.create(model="writer", input=history).output_text
    told = client.responses.create(model="writer", input="hello", instructions="Answer briefly.")
    assert told.instructions == "Answer briefly." and told.output_text


def test_instructions_are_refused_by_a_template_without_client_system_messages(live: LiveServer, keys: Keys) -> None:
    assert live.runtime is not None
    strict = AgentTemplate(name="strict_responder", model="offline", client_system_messages=False)
    live.runtime.factory.register_template(strict, replace=True)
    client = _client(live, keys.alice)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="strict_responder", input="hi", instructions="be terse")
    assert refused.value.body["param"] == "instructions"  # type: ignore[index]
    told: Any = [{"role": "developer", "content": "be terse"}, {"role": "user", "content": "hi"}]
    earlier = client.responses.create(model="writer", input=told)
    with pytest.raises(openai.BadRequestError) as carried:  # nor through a conversation another template held
        client.responses.create(model="strict_responder", input="hello", previous_response_id=earlier.id)
    assert carried.value.body["param"] == "previous_response_id"  # type: ignore[index]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        pytest.param({"tools": [{"type": "function", "name": "f", "parameters": {}}]}, "tools", id="tools"),
        pytest.param({"tool_choice": "required"}, "tool_choice", id="tool_choice"),
        pytest.param({"background": True}, "background", id="background"),
        pytest.param({"reasoning": {"effort": "high"}}, "reasoning", id="reasoning"),
        pytest.param({"include": ["message.output_text.logprobs"]}, "include", id="include"),
        pytest.param({"truncation": "auto"}, "truncation", id="truncation"),
        pytest.param({"text": {"format": {"type": "json_object"}}}, "text.format", id="text.format"),
        pytest.param({"temperature": 5}, "temperature", id="temperature"),
        pytest.param({"top_p": 1.5}, "top_p", id="top_p"),
        pytest.param({"max_output_tokens": 3}, "max_output_tokens", id="max_output_tokens"),
        pytest.param({"input": ""}, "input", id="empty-input"),
        pytest.param({"input": [{"role": "assistant", "content": "hi"}]}, "input[0]", id="last-not-user"),
        pytest.param(
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}]},
            "input[0].content[0]",
            id="image-part",
        ),
        pytest.param(
            {"input": [{"type": "function_call_output", "call_id": "c1", "output": "5"}]},
            "input[0].type",
            id="function-call-item",
        ),
        pytest.param({"input": [{"role": "robot", "content": "beep"}]}, "input[0].role", id="role"),
        pytest.param({"extra_headers": {"X-Session-Id": "ses_1"}}, "X-Session-Id", id="session-header"),
        pytest.param({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata", id="metadata-count"),
        pytest.param({"metadata": {"k" * 65: "v"}}, "metadata." + "k" * 65 + ".[key]", id="metadata-key"),
    ],
)
def test_unsupported_or_bad_parameters_are_400_naming_them(
    live: LiveServer, keys: Keys, params: dict[str, Any], param: str
) -> None:
    arguments: dict[str, Any] = {"model": "writer", "input": "hello", **params}
    with pytest.raises(openai.BadRequestError) as refused:
        _client(live, keys.alice).responses.create(**arguments)
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"]


def test_an_unknown_parameter_is_refused_by_name(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as http:
        answer = http.post("/v1/responses", json={"model": "writer", "input": "hi", "prompt_cache_key": "k"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "prompt_cache_key"


def test_another_tenants_response_is_not_found(live: LiveServer, keys: Keys) -> None:
    mine = _client(live, keys.alice).responses.create(model="writer", input="my name is Ada")
    intruder = _client(live, keys.eve)
    with pytest.raises(openai.NotFoundError) as hidden:
        intruder.responses.retrieve(mine.id)
    assert hidden.value.body["code"] == "response_not_found"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        intruder.responses.create(model="writer", input="what is my name?", previous_response_id=mine.id)
    with pytest.raises(openai.NotFoundError):
        intruder.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError):  # another user of the same tenant does not see it either
        _client(live, keys.bob).responses.retrieve(mine.id)
    assert _client(live, keys.alice).responses.retrieve(mine.id).id == mine.id


def test_streamed_events_come_in_order_and_reassemble_the_text(slow: LiveServer) -> None:
    """On a model that takes its time per token, each token is a delta of its own."""
    client = _client(slow, slow.key("acme", "streamer", ["agents:run:*"]))
    events = list(client.responses.create(model="writer", input="write a haiku about the sea", stream=True))
    kinds = [event.type for event in events]
    head = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    tail = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert kinds[:4] == head and kinds[-4:] == [*tail, "response.completed"]
    assert set(kinds[4:-4]) == {"response.output_text.delta"} and len(kinds) > 9
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    done = events[-1]
    assert done.type == "response.completed" and done.response.output_text == text
    assert events[-4].type == "response.output_text.done" and events[-4].text == text
    assert done.response.usage is not None and done.response.usage.output_tokens > 0
    assert client.responses.retrieve(done.response.id).output_text == text  # stored before completion was sent


def test_streamed_response_continues_a_conversation(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.bob)
    first = client.responses.create(model="writer", input="my name is Lin", stream=True)
    first_id = next(e for e in first if e.type == "response.completed").response.id
    second = client.responses.create(model="writer", input="what is my name?", previous_response_id=first_id)
    assert "Lin" in second.output_text


def test_wire_format_of_the_stream(live: LiveServer, keys: Keys) -> None:
    """Each SSE event is named after its ``type``, as OpenAI sends them."""
    with live.client(keys.alice) as http:
        answer = http.post("/v1/responses", json={"model": "writer", "input": "hello", "stream": True})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    events = sse_json(answer.text)
    assert all(name == data["type"] for name, data in events)


def test_usage_ledger_records_what_the_response_reported(live: LiveServer) -> None:
    key = live.key("acme", "ledger_" + uuid.uuid4().hex[:8], ["agents:run:*", "usage"])
    client = _client(live, key)
    plain = client.responses.create(model="writer", input="write a haiku about the sea")
    streamed = [e for e in client.responses.create(model="writer", input="hello", stream=True)]
    reported = [plain.usage, streamed[-1].response.usage]
    assert all(usage is not None for usage in reported)
    expected = {
        "runs": 2,
        "input_tokens": sum(u.input_tokens for u in reported if u),
        "output_tokens": sum(u.output_tokens for u in reported if u),
    }
    with live.client(key) as http:  # accounting may land a moment after the answer (the outbox)
        totals = until_sync(
            lambda: (t := http.get("/v1/usage").json()["totals"])["runs"] >= 2 and t, "the usage ledger", timeout=10
        )
    assert {name: totals[name] for name in expected} == expected


def test_a_run_paused_for_approval_is_a_conflict_naming_how_to_answer_it(live: LiveServer, tmp_path: Path) -> None:
    """The Responses API has no approval step: 409 (plain) or ``response.failed`` (streamed), never an empty answer."""
    assert live.runtime is not None
    factory = live.runtime.factory
    if "publish" not in factory.tools:  # the tool never runs here; test_resume's own copy may be registered
        factory.register_tool(recording_tool(tmp_path / "calls.txt"))
    factory.register_template({**gated_template(), "name": "gated_responses"}, replace=True)
    client = _client(live, live.key("acme", "gatekeeper", ["agents:run:*"]))
    ask = 'use publish {"text": "launch"}'
    with pytest.raises(openai.ConflictError) as paused:
        client.responses.create(model="gated_responses", input=ask)
    assert "paused for approval" in paused.value.message
    events = list(client.responses.create(model="gated_responses", input=ask, stream=True))
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert failed.response.error is not None and failed.response.error.code == "conflict"
    assert "/resume" in failed.response.error.message


def test_max_output_tokens_cuts_the_answer_as_incomplete(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.alice)
    ask = "write a long story about the sea, the wind, the ships and every sailor on them " * 3
    full = client.responses.create(model="writer", input=ask)
    assert full.status == "completed" and full.usage is not None and full.usage.output_tokens > 16
    cut = client.responses.create(model="writer", input=ask, max_output_tokens=16)
    assert cut.status == "incomplete" and cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens" and cut.max_output_tokens == 16
    assert cut.usage is not None and 0 < cut.usage.output_tokens <= 16
    streamed = list(client.responses.create(model="writer", input=ask, max_output_tokens=16, stream=True))
    assert streamed[-1].type == "response.incomplete" and streamed[-1].response.status == "incomplete"


def test_the_template_scope_is_needed(live: LiveServer, keys: Keys) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        _client(live, keys.writer_only).responses.create(model="analyst", input="hello")
    assert _client(live, keys.writer_only).responses.create(model="writer", input="hello").status == "completed"
    with pytest.raises(openai.AuthenticationError):
        _client(live, "ar_not_a_key").responses.create(model="writer", input="hello")
    with live.client() as anonymous:
        assert anonymous.get("/v1/responses/resp_x").status_code == 401


def test_an_unknown_template_is_a_404_in_openais_shape(live: LiveServer, keys: Keys) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        _client(live, keys.alice).responses.create(model="no_such_template", input="hello")
    assert missing.value.body["type"] == "not_found_error"  # type: ignore[index]


def test_input_items_list_the_responses_own_input(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.alice)
    first = client.responses.create(model="writer", input="my name is Ada")
    history: Any = [
        {"role": "developer", "content": "Answer briefly."},
        {"role": "user", "content": "what is my name?"},
    ]
    second = client.responses.create(model="writer", input=history, previous_response_id=first.id)
    newest_first = client.responses.input_items.list(second.id)
    assert [(item.role, item.content[0].text) for item in newest_first.data] == [  # type: ignore[union-attr]
        ("user", "what is my name?"),
        ("system", "Answer briefly."),
    ]  # this response's input only, not the conversation it continued
    oldest = client.responses.input_items.list(second.id, order="asc", limit=1)
    assert oldest.has_more and oldest.data[0].content[0].text == "Answer briefly."  # type: ignore[union-attr]
    rest = client.responses.input_items.list(second.id, order="asc", after=oldest.data[0].id)
    assert not rest.has_more and [item.id for item in rest.data] == [newest_first.data[0].id]
    with pytest.raises(openai.NotFoundError):
        _client(live, keys.eve).responses.input_items.list(second.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.input_items.list(second.id, include=["message.input_image.image_url"])


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(400)  # two worker processes starting, on a machine that may be busy
def test_a_response_stored_by_one_worker_is_continued_on_another(redis_url: str, tmp_path: Path) -> None:
    """Stored responses live in the shared store (here Redis), not in a worker's memory."""
    env = {
        "AGENT_RUNTIME_STATE_BACKEND": "redis",
        "AGENT_RUNTIME_REDIS_URL": redis_url,
        "AGENT_RUNTIME_DATA_DIR": str(tmp_path),
        "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
    }
    server = ServeProcess(env, workers=2)
    try:
        key = server.admin_key(timeout=180)
        server.wait_ready(timeout=180)
        first, pid1 = _client_on_worker(server.url, key, None)
        second, pid2 = _client_on_worker(server.url, key, pid1)
        try:
            told = first.post("/v1/responses", json={"model": "writer", "input": "my name is Ada"})
            assert told.status_code == 200, told.text
            ask = {"model": "writer", "input": "what is my name?", "previous_response_id": told.json()["id"]}
            asked = second.post("/v1/responses", json=ask)
            assert asked.status_code == 200 and "Ada" in asked.json()["output"][0]["content"][0]["text"]
            assert second.get(f"/v1/responses/{told.json()['id']}").status_code == 200
            assert second.get("/healthz").json()["pid"] == pid2 != pid1  # really answered by the other worker
        finally:
            first.close()
            second.close()
    finally:
        assert server.terminate() == 0


def test_the_templates_own_tools_run_server_side(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.alice)
    plain = client.responses.create(model="analyst", input="what is 17*23+4?")
    assert "395" in plain.output_text and [item.type for item in plain.output] == ["message"]
    events = list(client.responses.create(model="analyst", input="what is 17*23+4?", stream=True))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert events[-1].type == "response.completed" and events[-1].response.output_text == text
    assert "395" in text
