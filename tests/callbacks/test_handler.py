from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.callbacks import AgentCallbackHandler, CallbackEvent


@pytest.fixture(scope="module")
def analyst():
    return AgentFactory().create_from_template("analyst")


def _ask(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def test_is_a_langchain_callback_handler() -> None:
    assert issubclass(AgentCallbackHandler, BaseCallbackHandler)
    with pytest.raises(ValueError):
        AgentCallbackHandler(max_events=0)


async def test_records_llm_tool_and_chain_events_with_a_summary(analyst) -> None:
    handler = AgentCallbackHandler()
    before = time.time()
    await analyst.ainvoke(_ask("what is 17*23+4?"), {"callbacks": [handler]})
    summary = handler.get_summary()
    assert summary.llm_calls == 2  # the tool call, then the answer
    assert summary.tool_calls == 1
    assert summary.tools_used == {"calculator": 1}
    assert summary.input_tokens > 0 and summary.output_tokens > 0
    assert summary.total_tokens == summary.input_tokens + summary.output_tokens
    assert summary.errors == 0 and summary.chain_runs > 0
    tool_ends = handler.get_events("tool_end")
    assert len(tool_ends) == 1 and tool_ends[0].data["output"] == "395"
    assert {e.event_type for e in handler.get_events(["llm_start", "llm_end"])} == {"llm_start", "llm_end"}
    assert handler.get_events(since=time.time() + 60) == []
    assert len(handler.get_events(since=before, until=time.time())) == len(handler.events)
    as_dict = handler.to_dict()
    assert as_dict["summary"]["tool_calls"] == 1
    assert isinstance(as_dict["events"][0], dict) and "event_type" in as_dict["events"][0]
    with pytest.raises(ValueError, match="unknown event type"):
        handler.get_events("nonsense")


def test_works_under_sync_execution(analyst) -> None:
    handler = AgentCallbackHandler()
    analyst.invoke(_ask("what is 2+3?"), {"callbacks": [handler]})
    assert handler.get_summary().tool_calls == 1


async def test_streaming_hook_receives_tokens(analyst) -> None:
    tokens: list[str] = []
    handler = AgentCallbackHandler(on_token=tokens.append)
    async for _ in analyst.astream(_ask("what is 10/4?"), {"callbacks": [handler]}, stream_mode="messages"):
        pass
    assert tokens and "2.5" in "".join(tokens)
    summary = handler.get_summary()
    assert summary.tokens_streamed == len(tokens)
    assert summary.time_to_first_token_ms is not None


async def test_max_events_bounds_memory_and_counts_drops(analyst) -> None:
    handler = AgentCallbackHandler(max_events=5)
    await analyst.ainvoke(_ask("what is 1+1?"), {"callbacks": [handler]})
    assert len(handler.events) == 5
    assert handler.dropped_events > 0
    summary = handler.get_summary()
    assert summary.events_dropped == handler.dropped_events
    assert summary.llm_calls == 2  # counting is not affected by dropping
    handler.clear()
    assert handler.events == [] and handler.get_summary().llm_calls == 0


async def test_concurrent_runs_never_mix(analyst) -> None:
    handlers = [AgentCallbackHandler() for _ in range(20)]
    await asyncio.gather(
        *(analyst.ainvoke(_ask(f"what is {i}*3?"), {"callbacks": [h]}) for i, h in enumerate(handlers))
    )
    for i, handler in enumerate(handlers):
        outputs = [e.data["output"] for e in handler.get_events("tool_end")]
        assert outputs == [str(i * 3)]


async def test_errors_are_recorded(analyst) -> None:
    handler = AgentCallbackHandler()

    class Boom(Exception):
        pass

    from langchain_core.runnables import RunnableLambda

    def fail(_: object) -> None:
        raise Boom("kaput")

    with pytest.raises(Boom):
        await RunnableLambda(fail).ainvoke(1, {"callbacks": [handler]})
    errors = handler.get_events("chain_error")
    assert errors and errors[0].data == {"error": "Boom", "message": "kaput"}
    assert handler.get_summary().errors == 1
    assert isinstance(errors[0], CallbackEvent)
