"""The offline model driving LangChain's real agent loop (``create_agent``) end to end."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel

from agent_runtime.models import OfflineChatModel
from agent_runtime.tools import calculator, make_search_tool

QUESTION = {"messages": [{"role": "user", "content": "what is 17*23+4?"}]}


def _analyst(**kwargs: Any) -> Any:
    return create_agent(
        model=OfflineChatModel(**kwargs),
        tools=[calculator, make_search_tool()],
        system_prompt="You are an analyst. Use tools for calculations and facts.",
    )


async def test_calculator_question_runs_a_real_tool_call() -> None:
    result = await _analyst().ainvoke(QUESTION)
    messages = result["messages"]
    calls = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    assert [(c["name"], c["args"]) for c in calls] == [("calculator", {"expression": "17*23+4"})]
    tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
    assert [m.content for m in tool_messages] == ["395"]
    final = messages[-1]
    assert isinstance(final, AIMessage) and "395" in final.text
    assert final.usage_metadata is not None and final.response_metadata["offline"] is True


def test_sync_invoke_works_too() -> None:
    assert "395" in _analyst().invoke(QUESTION)["messages"][-1].text


async def test_stream_mode_messages_streams_tokens() -> None:
    chunks: list[AIMessageChunk] = []
    async for message, _metadata in _analyst().astream(QUESTION, stream_mode="messages"):
        if isinstance(message, AIMessageChunk):
            chunks.append(message)
    tool_call_chunks = [c for c in chunks if c.tool_call_chunks]
    text_chunks = [c.text for c in chunks if c.text]
    assert tool_call_chunks and tool_call_chunks[0].tool_call_chunks[0]["name"] == "calculator"
    assert len(text_chunks) >= 3
    assert "".join(text_chunks) == "17*23+4 = 395."


async def test_search_question_answers_from_the_documents() -> None:
    result = await _analyst().ainvoke(
        {"messages": [{"role": "user", "content": "search for how a distributed rate limiter uses Redis"}]}
    )
    search_result = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert search_result.name == "search" and "rate-limiting.md" in search_result.text
    assert "rate-limiting.md" in result["messages"][-1].text


async def test_tool_error_is_reported_not_raised() -> None:
    result = await _analyst().ainvoke({"messages": [{"role": "user", "content": "compute 1/0 please"}]})
    error = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert error.status == "error" and "division by zero" in error.text
    assert "could not complete" in result["messages"][-1].text


async def test_plain_questions_need_no_tool() -> None:
    result = await _analyst().ainvoke({"messages": [{"role": "user", "content": "a haiku about rain"}]})
    assert len(result["messages"]) == 2
    assert len(result["messages"][-1].text.splitlines()) == 3


async def test_conversation_memory_through_a_checkpointer() -> None:
    agent = create_agent(model=OfflineChatModel(), tools=[calculator], checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t1"}}
    await agent.ainvoke({"messages": [{"role": "user", "content": "my name is Ada"}]}, config)
    result = await agent.ainvoke({"messages": [{"role": "user", "content": "what is my name?"}]}, config)
    assert result["messages"][-1].text == "Your name is Ada."
    other = await agent.ainvoke(
        {"messages": [{"role": "user", "content": "what is my name?"}]}, {"configurable": {"thread_id": "t2"}}
    )
    assert "don't know" in other["messages"][-1].text


async def test_structured_response_after_a_tool_call_ends_the_loop() -> None:
    class Answer(BaseModel):
        answer: str

    agent = create_agent(model=OfflineChatModel(), tools=[calculator], response_format=Answer)
    result = await agent.ainvoke(QUESTION, {"recursion_limit": 10})
    assert isinstance(result["structured_response"], Answer)
    assert "395" in result["structured_response"].answer
