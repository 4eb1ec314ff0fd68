"""Per-run generation options reach the model call through the agent's GenerationMiddleware."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import BaseMessage, HumanMessage

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.agents.generation import GENERATION_KEY
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.types import AgentContext, GenerationOptions


class _Invocations(AsyncCallbackHandler):
    """Records the invocation parameters of every chat model call (what the provider would be sent)."""

    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.params.append(dict(kwargs.get("invocation_params") or {}))


async def test_run_options_are_the_model_calls_settings() -> None:
    factory = AgentFactory()
    agent = factory.create_from_template("writer", model="offline")
    options = GenerationOptions(temperature=0.3, top_p=0.9, seed=7, presence_penalty=0.5, user="u1", stop=("zz",))
    calls = _Invocations()
    config: dict[str, Any] = {"configurable": {GENERATION_KEY: options.model_settings()}, "callbacks": [calls]}
    await agent.ainvoke({"messages": [HumanMessage("a haiku about rain")]}, config)
    assert calls.params, "the model was not called"
    sent = calls.params[-1]
    assert sent["temperature"] == 0.3 and sent["top_p"] == 0.9 and sent["seed"] == 7
    assert sent["presence_penalty"] == 0.5 and sent["user"] == "u1" and sent["stop"] == ["zz"]
    plain = _Invocations()
    await agent.ainvoke({"messages": [HumanMessage("a haiku about rain")]}, {"callbacks": [plain]})
    assert "seed" not in plain.params[-1]  # options are per run: the compiled agent is shared


async def test_a_client_max_tokens_never_raises_the_templates_bound() -> None:
    factory = AgentFactory()
    factory.register_template({"name": "terse", "model": "offline", "max_output_tokens": 2})
    executor = AgentExecutor(factory)
    wide = AgentContext(input="a haiku about rain", template="terse", generation=GenerationOptions(max_tokens=500))
    result = await executor.execute_async(wide)
    assert result.usage.output_tokens <= 2 and result.metadata["finish_reason"] == "length"
    narrow = AgentContext(input="a haiku about rain", template="writer", generation=GenerationOptions(max_tokens=1))
    assert (await executor.execute_async(narrow)).usage.output_tokens == 1
