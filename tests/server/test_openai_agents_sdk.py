"""The OpenAI Agents SDK (``openai-agents``) running agents whose model is an agent-runtime template,
through ``/v1/responses`` on a served worker (offline model, tracing off): plain, streamed, and
multi-turn both ways the SDK offers (resending the items, or ``previous_response_id``)."""

from __future__ import annotations

import asyncio
from typing import Any

from agents import Agent, OpenAIResponsesModel, RunConfig, Runner
from openai import AsyncOpenAI

from tests.server.conftest import Keys, LiveServer

OFFLINE = RunConfig(tracing_disabled=True)


def _agent(live: LiveServer, key: str, template: str = "writer") -> Agent[Any]:
    client = AsyncOpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0)
    return Agent(
        name="Assistant",
        instructions="Answer briefly.",
        model=OpenAIResponsesModel(model=template, openai_client=client),
    )


def test_an_agent_runs_on_a_template(live: LiveServer, keys: Keys) -> None:
    result = Runner.run_sync(_agent(live, keys.alice), "write a haiku about the sea", run_config=OFFLINE)
    assert isinstance(result.final_output, str) and result.final_output.strip()
    [response] = result.raw_responses
    assert response.response_id is not None and response.response_id.startswith("resp_")
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert result.context_wrapper.usage.total_tokens == response.usage.total_tokens


def test_a_conversation_resent_as_items_remembers(live: LiveServer, keys: Keys) -> None:
    agent = _agent(live, keys.alice)
    first = Runner.run_sync(agent, "my name is Ada", run_config=OFFLINE)
    turns = [*first.to_input_list(), {"role": "user", "content": "what is my name?"}]
    second = Runner.run_sync(agent, turns, run_config=OFFLINE)  # type: ignore[arg-type]
    assert "Ada" in str(second.final_output)


def test_a_conversation_continued_by_previous_response_id_remembers(live: LiveServer, keys: Keys) -> None:
    agent = _agent(live, keys.bob)
    first = Runner.run_sync(agent, "my name is Ada", run_config=OFFLINE)
    second = Runner.run_sync(agent, "what is my name?", previous_response_id=first.last_response_id, run_config=OFFLINE)
    assert "Ada" in str(second.final_output)


def test_a_streamed_run_delivers_the_text_as_deltas(live: LiveServer, keys: Keys) -> None:
    async def run() -> tuple[str, list[str]]:
        streamed = Runner.run_streamed(_agent(live, keys.alice), "write a haiku about the sea", run_config=OFFLINE)
        deltas = [
            event.data.delta
            async for event in streamed.stream_events()
            if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
        ]
        return str(streamed.final_output), deltas

    final, deltas = asyncio.run(run())
    assert deltas and "".join(deltas) == final
