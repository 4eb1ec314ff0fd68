"""Behaviour of the offline chat model: text answers, streaming, usage, stop, tools and tool choice."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from agent_runtime.models import OfflineChatModel, register_offline_matcher, unregister_offline_matcher
from agent_runtime.models._replies import split_tokens
from agent_runtime.tools import calculator


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return f"It is sunny in {location}."


@tool
def set_volume(level: int = Field(ge=0, le=11), muted: bool = False) -> str:
    """Set the speaker volume."""
    return f"volume {level}"


class Collector(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.ends = 0

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends += 1


class AsyncCollector(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


@pytest.fixture
def model() -> OfflineChatModel:
    return OfflineChatModel()


def _tool_turn(expression: str, result: str, *, status: str = "success") -> list[BaseMessage]:
    call = {"name": "calculator", "args": {"expression": expression}, "id": "call_1", "type": "tool_call"}
    return [
        HumanMessage(f"what is {expression}?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage(result, tool_call_id="call_1", status=status),
    ]


# --- text answers -----------------------------------------------------------------------------


def test_haiku_has_three_lines_about_the_topic(model: OfflineChatModel) -> None:
    answer = model.invoke("a haiku about rain")
    lines = answer.text.splitlines()
    assert len(lines) == 3
    assert sum("rain" in line.lower() for line in lines) >= 2


def test_answers_are_deterministic_and_clean(model: OfflineChatModel) -> None:
    first, second = (
        model.invoke("Explain how Redis persistence works"),
        model.invoke("Explain how Redis persistence works"),
    )
    assert first.text == second.text
    assert "offline" not in first.text.lower()
    assert first.response_metadata["model_name"] == "offline"
    assert first.response_metadata["offline"] is True


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("hello", "Hello! How can I help you today?"),
        ("write a short note about solar panels", "solar panels"),
        ("Why is the sky blue?", "sky blue"),
        ("two haikus about the sea", "\n\n"),
        ("", "did not receive any text"),
    ],
)
def test_text_answers_follow_the_request(model: OfflineChatModel, prompt: str, expected: str) -> None:
    assert expected in model.invoke([HumanMessage(prompt)]).text


def test_remembers_the_users_name_from_history(model: OfflineChatModel) -> None:
    history = [HumanMessage("Hi, my name is Ada Lovelace"), AIMessage("Nice to meet you, Ada Lovelace!")]
    assert model.invoke([*history, HumanMessage("What is my name?")]).text == "Your name is Ada Lovelace."
    assert "don't know your name" in model.invoke("what is my name?").text


def test_ignores_system_messages_and_handles_double_messages(model: OfflineChatModel) -> None:
    messages = [SystemMessage("be terse"), SystemMessage("be kind"), HumanMessage("hello"), HumanMessage("how are you")]
    assert "doing well" in model.invoke(messages).text


# --- usage, streaming, callbacks ---------------------------------------------------------------


def test_usage_metadata_counts_input_and_streamed_tokens(model: OfflineChatModel) -> None:
    short = model.invoke("hello")
    long = model.invoke([HumanMessage("hello " * 50), AIMessage("ok"), HumanMessage("hello")])
    usage = short.usage_metadata
    assert usage is not None and long.usage_metadata is not None
    assert usage["output_tokens"] == len(split_tokens(short.text))
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert long.usage_metadata["input_tokens"] > usage["input_tokens"] + 50


def test_stream_yields_word_tokens_and_usage_on_the_last_chunk(model: OfflineChatModel) -> None:
    chunks = list(model.stream("Tell me about rate limiting"))
    assert len(chunks) > 5
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert "".join(c.text for c in chunks) == model.invoke("Tell me about rate limiting").text
    assert all(c.usage_metadata is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.chunk_position == "last"
    assert last.usage_metadata is not None
    assert last.usage_metadata["output_tokens"] == len(chunks)
    assert last.response_metadata["offline"] is True


async def test_astream_matches_ainvoke(model: OfflineChatModel) -> None:
    chunks = [c async for c in model.astream("a haiku about snow")]
    full = (await model.ainvoke("a haiku about snow")).text
    assert "".join(c.text for c in chunks) == full
    assert chunks[-1].usage_metadata is not None


def test_on_llm_new_token_fires_when_streaming(model: OfflineChatModel) -> None:
    handler = Collector()
    tokens = [c.text for c in model.stream("a haiku about rain", config={"callbacks": [handler]})]
    assert handler.tokens[: len(tokens)] == tokens
    streaming = OfflineChatModel(streaming=True)
    handler = Collector()
    answer = streaming.invoke("a haiku about rain", config={"callbacks": [handler]})
    assert "".join(handler.tokens) == answer.text
    assert len(handler.tokens) >= 9 and handler.ends == 1


async def test_async_callbacks_see_tokens(model: OfflineChatModel) -> None:
    handler = AsyncCollector()
    text = "".join([c.text async for c in model.astream("hello there friend", config={"callbacks": [handler]})])
    assert "".join(handler.tokens) == text


def test_stop_sequences_cut_the_output(model: OfflineChatModel) -> None:
    assert model.invoke("hi", stop=["you"]).text == "Hello! How can I help "
    assert "".join(c.text for c in model.stream("hi", stop=["How"])) == "Hello! "
    assert OfflineChatModel(stop=["can"]).invoke("hi").text == "Hello! How "


def test_max_tokens_truncates_with_finish_reason_length() -> None:
    answer = OfflineChatModel(max_tokens=3).invoke("Tell me about the history of solar energy")
    assert len(split_tokens(answer.text)) == 3
    assert answer.response_metadata["finish_reason"] == "length"


def test_batch_and_abatch(model: OfflineChatModel) -> None:
    results = model.batch(["hello", "a haiku about rain"])
    assert [r.text for r in results] == [model.invoke("hello").text, model.invoke("a haiku about rain").text]
    assert len(asyncio.run(model.abatch(["hello", "hi"]))) == 2


def test_token_latency_delays_each_streamed_token() -> None:
    slow = OfflineChatModel(token_latency_ms=10)
    started = time.perf_counter()
    chunks = list(slow.stream("hello"))
    assert time.perf_counter() - started >= 0.009 * len(chunks)
    started = time.perf_counter()
    slow.invoke("hello")
    assert time.perf_counter() - started >= 0.009 * len(chunks)


async def test_async_latency_does_not_block_the_event_loop() -> None:
    slow = OfflineChatModel(token_latency_ms=5)
    order: list[str] = []

    async def consume(tag: str) -> None:
        async for _ in slow.astream("tell me about redis"):
            order.append(tag)

    await asyncio.gather(consume("a"), consume("b"))
    assert order[:4] in (["a", "b", "a", "b"], ["b", "a", "b", "a"])  # the two streams interleave


# --- tools -------------------------------------------------------------------------------------


def test_calls_the_calculator_with_schema_valid_args(model: OfflineChatModel) -> None:
    answer = model.bind_tools([calculator]).invoke("what is 17*23+4?")
    assert answer.text == ""
    assert [(c["name"], c["args"]) for c in answer.tool_calls] == [("calculator", {"expression": "17*23+4"})]
    assert answer.response_metadata["finish_reason"] == "tool_calls"
    assert calculator.invoke(answer.tool_calls[0]).content == "395"


def test_streamed_tool_calls_arrive_as_tool_call_chunks(model: OfflineChatModel) -> None:
    bound = model.bind_tools([calculator])
    chunks = list(bound.stream("what is the mean of 3, 5 and 10?"))
    assert all(c.tool_call_chunks for c in chunks)
    full: Any = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert full.tool_calls == bound.invoke("what is the mean of 3, 5 and 10?").tool_calls
    assert full.usage_metadata["output_tokens"] == len(chunks)


def test_answers_from_the_tool_result(model: OfflineChatModel) -> None:
    answer = model.bind_tools([calculator]).invoke(_tool_turn("17*23+4", "395"))
    assert answer.text == "17*23+4 = 395."
    assert not answer.tool_calls


def test_reports_a_tool_error(model: OfflineChatModel) -> None:
    answer = model.bind_tools([calculator]).invoke(_tool_turn("1/0", "division by zero", status="error"))
    assert "could not complete" in answer.text and "division by zero" in answer.text


def test_one_tool_round_per_turn_unless_the_result_asks(model: OfflineChatModel) -> None:
    bound = model.bind_tools([calculator])
    assert not bound.invoke(_tool_turn("2+2", "4")).tool_calls
    asking = _tool_turn("2+2", 'need more: use calculator {"expression": "4*10"}')
    assert bound.invoke(asking).tool_calls[0]["args"] == {"expression": "4*10"}
    capped = OfflineChatModel(max_tool_rounds=1).bind_tools([calculator])
    assert not capped.invoke(asking).tool_calls


def test_explicit_use_syntax_and_call_syntax(model: OfflineChatModel) -> None:
    bound = model.bind_tools([get_weather, set_volume])
    explicit = bound.invoke('please use get_weather {"location": "Paris"}')
    assert explicit.tool_calls[0]["args"] == {"location": "Paris"}
    call = bound.invoke("run set_volume(7, muted=True) now")
    assert call.tool_calls[0]["name"] == "set_volume"
    assert call.tool_calls[0]["args"] == {"level": 7, "muted": True}
    both = bound.invoke('use get_weather {"location": "Oslo"} and use set_volume {"level": 3}')
    assert [c["name"] for c in both.tool_calls] == ["get_weather", "set_volume"]


def test_explicit_use_without_json_still_uses_the_tools_matcher(model: OfflineChatModel) -> None:
    call = model.bind_tools([calculator]).invoke("use the calculator to compute 2+3").tool_calls[0]
    assert call["args"] == {"expression": "2+3"}


def test_mentioning_a_tool_calls_it_with_the_input(model: OfflineChatModel) -> None:
    answer = model.bind_tools([get_weather]).invoke("What is the weather in San Francisco, CA?")
    assert answer.tool_calls[0]["args"] == {"location": "What is the weather in San Francisco, CA?"}
    assert not model.bind_tools([get_weather]).invoke("tell me a joke").tool_calls


def test_tool_choice_forces_or_forbids_calls(model: OfflineChatModel) -> None:
    forced = model.bind_tools([get_weather, set_volume], tool_choice="any").invoke("Hello!")
    assert forced.tool_calls[0]["name"] == "get_weather"
    named = model.bind_tools([get_weather, set_volume], tool_choice="set_volume").invoke("turn it to 99")
    assert (named.tool_calls[0]["name"], named.tool_calls[0]["args"]) == ("set_volume", {"level": 11})
    set_volume.args_schema.model_validate(named.tool_calls[0]["args"])  # type: ignore[union-attr]
    required = model.bind_tools([calculator], tool_choice="required").invoke("hello")
    assert required.tool_calls
    none = model.bind_tools([calculator], tool_choice="none").invoke("what is 2+2?")
    assert not none.tool_calls and none.text
    with pytest.raises(ValueError, match="names no bound tool"):
        model.bind_tools([calculator], tool_choice="missing_tool")


def test_registered_matchers_and_formatters_are_used(model: OfflineChatModel) -> None:
    @tool
    def order_status(order_id: int) -> str:
        """Look up an order."""
        return "shipped"

    register_offline_matcher(
        "order_status",
        lambda text: {"order_id": int(m.group(1))} if (m := __import__("re").search(r"#(\d+)", text)) else None,
        formatter=lambda args, result: f"Order {args['order_id']} is {result}.",
    )
    try:
        bound = model.bind_tools([order_status])
        call = bound.invoke("where is #4521?").tool_calls[0]
        assert call["args"] == {"order_id": 4521}
        reply = bound.invoke(
            [
                HumanMessage("where is #4521?"),
                AIMessage("", tool_calls=[call]),
                ToolMessage("shipped", tool_call_id=call["id"]),
            ]
        )
        assert reply.text == "Order 4521 is shipped."
    finally:
        unregister_offline_matcher("order_status")
    assert not model.bind_tools([order_status]).invoke("where is #4521?").tool_calls


def test_structured_output_through_tool_calling(model: OfflineChatModel) -> None:
    class Joke(BaseModel):
        setup: str
        punchline: str
        rating: int | None = None

    result = model.with_structured_output(Joke).invoke("Tell me a joke about cats")
    assert isinstance(result, Joke) and "cats" in result.setup


def test_tool_call_ids_are_unique_within_a_conversation(model: OfflineChatModel) -> None:
    bound = model.bind_tools([calculator])
    first = bound.invoke("what is 2+2?").tool_calls[0]["id"]
    history: list[BaseMessage] = [*_tool_turn("2+2", "4"), AIMessage("2+2 = 4."), HumanMessage("what is 2+2?")]
    assert bound.invoke(history).tool_calls[0]["id"] != first


def test_model_fields_and_identity() -> None:
    model = OfflineChatModel(model="offline", token_latency_ms=1.5, max_tokens=5)
    assert model.model_name == "offline"
    assert model._llm_type == "offline"
    assert model._identifying_params["token_latency_ms"] == 1.5
    assert model._get_ls_params(model="other")["ls_model_name"] == "other"
    with pytest.raises(ValueError):
        OfflineChatModel(token_latency_ms=-1)
