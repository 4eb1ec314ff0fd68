"""OpenAI fidelity of /v1/chat/completions with the official ``openai`` client against a served worker:
the conversation is the ``messages`` list, generation parameters are honoured or refused (400 in
OpenAI's error shape), usage details and ``include_usage`` chunks as OpenAI sends them."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import OpenAI

from agent_runtime.agents.templates import AgentTemplate
from tests.server.conftest import Keys, LiveServer, sse_json

ADA = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "my name is Ada"},
    {"role": "assistant", "content": "Nice to meet you, Ada."},
    {"role": "user", "content": "what is my name?"},
]


def _client(live: LiveServer, key: str, **kwargs: Any) -> OpenAI:
    return OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0, **kwargs)


def _text(completion: Any) -> str:
    return str(completion.choices[0].message.content or "")


def test_history_in_messages_reaches_the_agent(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.alice)
    assert "Ada" in _text(client.chat.completions.create(model="writer", messages=ADA))  # type: ignore[arg-type]
    alone = client.chat.completions.create(model="writer", messages=[ADA[-1]])  # type: ignore[list-item]
    assert "Ada" not in _text(alone)  # the name came from the history, nowhere else


def test_history_with_tool_calls_reaches_the_session_in_order(live: LiveServer, keys: Keys) -> None:
    """A fresh session is seeded with the whole history the client sent (tool call, its result, in order)."""
    messages: list[Any] = [
        {"role": "user", "content": "what is 2+3?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "calculator", "arguments": '{"x": "2+3"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "5"},
        {"role": "assistant", "content": "2+3 is 5."},
        {"role": "user", "content": "my name is Ada"},
    ]
    client = _client(live, keys.alice, default_headers={"X-Session-Id": "ses_fidelity_tools"})
    client.chat.completions.create(model="writer", messages=messages)
    with live.client(keys.alice) as http:
        stored = http.get("/v1/sessions/ses_fidelity_tools/messages").json()["data"]
    roles = [m["role"] for m in stored]
    assert roles[:6] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert stored[1]["tool_calls"][0]["name"] == "calculator" and stored[2]["content"] == "5"


def test_session_appends_only_turns_newer_than_its_last_answer(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.bob, default_headers={"X-Session-Id": "ses_fidelity_merge"})
    first = client.chat.completions.create(model="writer", messages=ADA[:2])  # type: ignore[arg-type]
    history: list[Any] = [*ADA[:2], {"role": "assistant", "content": _text(first)}, ADA[3]]
    assert "Ada" in _text(client.chat.completions.create(model="writer", messages=history))
    with live.client(keys.bob) as http:
        stored = http.get("/v1/sessions/ses_fidelity_merge/messages").json()["data"]
    assert [m["content"] for m in stored if m["role"] == "user"] == ["my name is Ada", "what is my name?"]
    assert not any(m["role"] == "system" for m in stored[1:])  # the resent system message was not appended again


def test_client_system_messages_can_be_refused_by_the_template(live: LiveServer, keys: Keys) -> None:
    assert live.runtime is not None
    strict = AgentTemplate(name="strict_writer", model="offline", client_system_messages=False)
    live.runtime.factory.register_template(strict, replace=True)
    client = _client(live, keys.alice)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="strict_writer", messages=ADA)  # type: ignore[arg-type]
    assert refused.value.param == "messages[0].role" and refused.value.code == "system_not_allowed"
    assert "Ada" in _text(client.chat.completions.create(model="strict_writer", messages=ADA[1:]))  # type: ignore[arg-type]


def test_max_tokens_cuts_the_answer_with_finish_reason_length(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.alice)
    haiku: list[Any] = [{"role": "user", "content": "a haiku about rain"}]
    full = client.chat.completions.create(model="writer", messages=haiku)
    assert full.choices[0].finish_reason == "stop" and full.usage is not None and full.usage.completion_tokens > 3
    cut = client.chat.completions.create(model="writer", messages=haiku, max_tokens=3)
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None and 0 < cut.usage.completion_tokens <= 3
    assert len(_text(cut)) < len(_text(full))
    newer = client.chat.completions.create(model="writer", messages=haiku, max_completion_tokens=2)
    assert newer.choices[0].finish_reason == "length" and newer.usage and newer.usage.completion_tokens <= 2
    chunks = list(client.chat.completions.create(model="writer", messages=haiku, max_tokens=3, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == _text(cut)


def test_stop_sequences_reach_the_model(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.alice)
    haiku: list[Any] = [{"role": "user", "content": "a haiku about rain"}]
    full = _text(client.chat.completions.create(model="writer", messages=haiku))
    word = full.split()[2]
    cut = client.chat.completions.create(model="writer", messages=haiku, stop=word, temperature=0.2, seed=7)
    assert word not in _text(cut) and full.startswith(_text(cut)) and len(_text(cut)) < len(full)
    assert cut.choices[0].finish_reason == "stop"


def test_max_tokens_lowers_the_quota_reservation(live: LiveServer, keys: Keys) -> None:
    """The reservation is input + the output bound: 1024 tokens by default, the client's max_tokens if lower."""
    key = live.key("acme", "frugal", ["agents:run:*"], daily_tokens=300)
    client = _client(live, key)
    haiku: list[Any] = [{"role": "user", "content": "a haiku about rain"}]
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="writer", messages=haiku)
    admitted = client.chat.completions.create(model="writer", messages=haiku, max_tokens=20)
    assert admitted.choices[0].finish_reason in ("stop", "length")


REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"audio": {"voice": "alloy", "format": "wav"}, "modalities": ["text", "audio"]}, "audio"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}, "tools"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"extra_body": {"functions": [{"name": "f"}]}}, "functions"),
    ({"extra_body": {"logit_bias": {"50256": -100}}}, "logit_bias"),
    ({"temperature": 5}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"presence_penalty": 2.5}, "presence_penalty"),
    ({"frequency_penalty": -2.5}, "frequency_penalty"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"seed": "seven"}, "seed"),
    ({"user": "u" * 300}, "user"),
]


@pytest.mark.parametrize(("options", "param"), REFUSED, ids=[p for _, p in REFUSED])
def test_refused_parameters_are_400_in_openais_shape(
    live: LiveServer, keys: Keys, options: dict[str, Any], param: str
) -> None:
    client = _client(live, keys.alice)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="writer", messages=[{"role": "user", "content": "hi"}], **options)
    assert refused.value.status_code == 400
    body = refused.value.body
    assert isinstance(body, dict) and {"message", "type", "param", "code"} <= body.keys()
    assert body["type"] == "invalid_request_error" and body["message"]
    assert refused.value.param is not None and refused.value.param.split(".")[0] == param


REFUSED_MESSAGES: list[tuple[list[Any], str]] = [
    (
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}],
        "messages[0].content",
    ),
    (
        [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}],
        "messages[0].content",
    ),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "messages"),
    ([{"role": "function", "name": "f", "content": "1"}, {"role": "user", "content": "hi"}], "messages[0].role"),
    (
        [{"role": "tool", "tool_call_id": "call_x", "content": "1"}, {"role": "user", "content": "hi"}],
        "messages[0].tool_call_id",
    ),
    (
        [
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "user", "content": "hi"},
        ],
        "messages[1]",
    ),
    ([{"role": "user", "content": "   "}], "messages[0].content"),
]


@pytest.mark.parametrize(("messages", "param"), REFUSED_MESSAGES, ids=[str(i) for i in range(len(REFUSED_MESSAGES))])
def test_refused_messages_are_400_naming_them(live: LiveServer, keys: Keys, messages: list[Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _client(live, keys.alice).chat.completions.create(model="writer", messages=messages)
    assert refused.value.param == param and refused.value.message


def test_validation_errors_elsewhere_stay_422(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as http:
        assert http.post("/v1/runs", json={"template": "writer"}).status_code == 422
        chat = http.post("/v1/chat/completions", json={"model": "writer"})
    assert chat.status_code == 400 and chat.json()["error"]["param"] == "messages"


def test_usage_details_and_include_usage_chunks(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.alice)
    haiku: list[Any] = [{"role": "user", "content": "a haiku about rain"}]
    completion = client.chat.completions.create(model="writer", messages=haiku)
    assert completion.usage is not None
    assert (
        completion.usage.prompt_tokens_details is not None and completion.usage.prompt_tokens_details.cached_tokens == 0
    )
    details = completion.usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens == 0
    with live.client(keys.alice) as http:
        body = {"model": "writer", "messages": haiku, "stream": True, "stream_options": {"include_usage": True}}
        events = [data for _, data in sse_json(http.post("/v1/chat/completions", json=body).text)]
        plain = [
            data for _, data in sse_json(http.post("/v1/chat/completions", json={**body, "stream_options": None}).text)
        ]
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0
    assert last["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    assert all("usage" not in c for c in plain[:-1])  # without include_usage: no usage key at all


def test_workflow_stream_and_answer_carry_the_same_content(live: LiveServer, keys: Keys) -> None:
    client = _client(live, keys.alice)
    question: list[Any] = [{"role": "user", "content": "the runtime's retry policy"}]
    answer = _text(client.chat.completions.create(model="research_report", messages=question))
    chunks = list(client.chat.completions.create(model="research_report", messages=question, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert answer and streamed == answer


def test_error_shape_has_param_everywhere(live: LiveServer, keys: Keys) -> None:
    with live.client(keys.alice) as http:
        error = http.post(
            "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert error.status_code == 404
    assert json.loads(error.text)["error"].keys() >= {"message", "type", "param", "code"}


@pytest.mark.parametrize("param", ["seed", "presence_penalty", "frequency_penalty"])
def test_options_a_templates_provider_cannot_take_are_400(live: LiveServer, keys: Keys, param: str) -> None:
    """Refused before any model is built: a provider SDK would fail the run on an unknown keyword."""
    assert live.runtime is not None
    live.runtime.factory.register_template(
        {"name": "claude_writer", "model": "anthropic:claude-haiku-4-5"}, replace=True
    )
    with pytest.raises(openai.BadRequestError) as refused:
        _client(live, keys.alice).chat.completions.create(
            model="claude_writer", messages=[{"role": "user", "content": "hi"}], **{param: 1}
        )
    assert refused.value.param == param and "anthropic" in refused.value.message


def test_langchain_chat_openai_message_history(live: LiveServer, keys: Keys) -> None:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(base_url=live.url + "/v1", api_key=keys.alice, model="writer", max_retries=0)
    history = [
        SystemMessage("Answer briefly."),
        HumanMessage("my name is Ada"),
        AIMessage("Nice to meet you, Ada."),
        HumanMessage("what is my name?"),
    ]
    assert "Ada" in str(model.invoke(history).content)
    assert "Ada" in "".join(str(chunk.content) for chunk in model.stream(history))
    cut = model.bind(max_tokens=2).invoke([HumanMessage("a haiku about rain")])
    assert cut.response_metadata["finish_reason"] == "length"
