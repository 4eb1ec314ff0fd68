"""Real OpenAI clients against /v1/chat/completions, and one runtime using another as its model."""

from __future__ import annotations

import asyncio

import openai
import pytest
from langchain_openai import ChatOpenAI
from openai import OpenAI

from agent_runtime.runtime import Runtime
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, Principal
from tests.server.conftest import Keys, LiveServer


def test_openai_client_non_streaming(live: LiveServer, keys: Keys) -> None:
    client = OpenAI(base_url=live.url + "/v1", api_key=keys.alice)
    completion = client.chat.completions.create(
        model="analyst", messages=[{"role": "user", "content": "what is 17*23+4?"}]
    )
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert "395" in (completion.choices[0].message.content or "")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_openai_client_streaming_with_usage(live: LiveServer, keys: Keys) -> None:
    client = OpenAI(base_url=live.url + "/v1", api_key=keys.alice)
    stream = client.chat.completions.create(
        model="writer",
        messages=[{"role": "user", "content": "a haiku about rain"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "rain" in text.lower()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_openai_client_models_and_errors(live: LiveServer, keys: Keys) -> None:
    client = OpenAI(base_url=live.url + "/v1", api_key=keys.alice, max_retries=0)
    assert {"writer", "analyst", "searcher"} <= {m.id for m in client.models.list()}
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert "nope" in str(missing.value)
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=live.url + "/v1", api_key="wrong", max_retries=0).models.list()


def test_openai_client_session_header_keeps_the_conversation(live: LiveServer, keys: Keys) -> None:
    client = OpenAI(base_url=live.url + "/v1", api_key=keys.bob, default_headers={"X-Session-Id": "ses_openai_chat"})
    client.chat.completions.create(model="writer", messages=[{"role": "user", "content": "my name is Grace"}])
    again = client.chat.completions.create(model="writer", messages=[{"role": "user", "content": "what is my name?"}])
    assert "Grace" in (again.choices[0].message.content or "")
    meta = OpenAI(base_url=live.url + "/v1", api_key=keys.bob).chat.completions.create(
        model="writer",
        messages=[{"role": "user", "content": "what is my name?"}],
        metadata={"session_id": "ses_openai_chat"},
    )
    assert "Grace" in (meta.choices[0].message.content or "")


def test_langchain_chat_openai(live: LiveServer, keys: Keys) -> None:
    model = ChatOpenAI(base_url=live.url + "/v1", api_key=keys.alice, model="writer", max_retries=0)
    answer = model.invoke("a haiku about rain")
    assert "rain" in str(answer.content).lower()
    assert answer.usage_metadata is not None and answer.usage_metadata["total_tokens"] > 0
    streamed = list(
        ChatOpenAI(base_url=live.url + "/v1", api_key=keys.alice, model="writer", stream_usage=True).stream(
            "a haiku about rain"
        )
    )
    assert len(streamed) > 3
    assert "rain" in "".join(str(c.content) for c in streamed).lower()
    assert any(c.usage_metadata and c.usage_metadata["output_tokens"] > 0 for c in streamed)


async def test_langchain_chat_openai_async(live: LiveServer, keys: Keys) -> None:
    model = ChatOpenAI(base_url=live.url + "/v1", api_key=keys.alice, model="analyst")
    answer = await model.ainvoke("what is 6*7?")
    assert "42" in str(answer.content)
    parts = [chunk async for chunk in model.astream("what is 6*7?")]
    assert "42" in "".join(str(p.content) for p in parts)


def test_runtime_uses_another_runtime_as_its_model(
    live: LiveServer, keys: Keys, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runtime B's template runs on runtime A's `writer` through the OpenAI-compatible endpoint."""
    monkeypatch.setenv("OPENAI_API_KEY", keys.alice)  # the key B presents to A (see models/resolve.py)
    template = tmp_path / "relay.yaml"
    template.write_text(
        "name: relay\n"
        "description: answers through another agent-runtime\n"
        f"model: openai-compatible:writer@{live.url}/v1\n"
    )

    async def run() -> tuple[str, int]:
        runtime = await Runtime.create(Settings(state_backend="memory", templates_dir=tmp_path, data_dir=tmp_path))
        try:
            principal = Principal(tenant="b", user="relay", scopes=frozenset({"agents:run:*"}))
            result = await runtime.executor.execute_async(
                AgentContext(input="a haiku about rain", template="relay", principal=principal)
            )
            return result.output, result.usage.total_tokens
        finally:
            await runtime.aclose()

    before = _runs_for(live, keys.alice)
    output, tokens = asyncio.run(run())
    assert "rain" in output.lower() and tokens > 0
    assert _runs_for(live, keys.alice) == before + 1  # A really served it, charged to B's key


def _runs_for(server: LiveServer, key: str) -> int:
    with server.client(key) as client:
        return int(client.get("/v1/usage").json()["totals"]["runs"])
