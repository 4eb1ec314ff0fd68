"""The built-in deterministic chat model: the default when no provider is configured.

It is a real LangChain chat model (``bind_tools``, tool choice, streaming, usage metadata, stop
sequences), so ``langchain.agents.create_agent`` drives it through the same tool loop as a hosted
model. It never calls a network; its answers are derived from the conversation alone, and every
response carries ``response_metadata={"model_name": ..., "offline": True}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from agent_runtime.models._planner import (
    OfflineFormatter,
    OfflineMatcher,
    PlannedCall,
    ToolSpec,
    fill_args,
    format_tool_result,
    normalize_tool_choice,
    plan_tool_calls,
    register_offline_matcher,
    tool_directive,
    unregister_offline_matcher,
)
from agent_runtime.models._replies import apply_stop, count_tokens, reply_without_tools, split_tokens

__all__ = [
    "OfflineChatModel",
    "OfflineFormatter",
    "OfflineMatcher",
    "register_offline_matcher",
    "unregister_offline_matcher",
]

FinishReason = Literal["stop", "length", "tool_calls"]


@dataclass
class _Reply:
    """One decided response, before it is shaped into a message or a stream of chunks."""

    model_name: str
    input_tokens: int
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: FinishReason = "stop"

    def pieces(self) -> list[list[str]]:
        """The streamed tokens: one list for the text, or one list of argument fragments per tool call."""
        if self.tool_calls:
            return [split_tokens(json.dumps(call["args"], ensure_ascii=False)) for call in self.tool_calls]
        return [split_tokens(self.text)]

    @property
    def output_tokens(self) -> int:
        return sum(len(p) for p in self.pieces())

    def usage(self) -> UsageMetadata:
        output = self.output_tokens
        return UsageMetadata(
            input_tokens=self.input_tokens, output_tokens=output, total_tokens=self.input_tokens + output
        )

    def metadata(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "offline": True, "finish_reason": self.finish_reason}


class OfflineChatModel(BaseChatModel):
    """A deterministic, network-free chat model that really drives LangChain's tool loop.

    With tools bound it calls them when the latest user message asks for them (explicit
    ``use <tool> {json}``, call syntax ``tool(...)``, a matcher registered by the tool, or a mention of
    the tool's name), then answers from the tool results. Without tools it answers from the text and
    the conversation (it remembers "my name is ..."). ``token_latency_ms`` imitates a provider's speed.
    """

    model_config = ConfigDict(populate_by_name=True, protected_namespaces=())

    model_name: str = Field(default="offline", alias="model")
    """Reported as ``response_metadata["model_name"]``; a per-call ``model=`` overrides it."""
    token_latency_ms: float = Field(default=0.0, ge=0.0)
    """Delay per output token (per streamed chunk, or in total for a non-streamed call)."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Cut text answers after this many tokens (``finish_reason="length"``)."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Default stop sequences, merged with the per-call ``stop``."""
    temperature: float | None = None
    """Accepted for compatibility with the standard parameters; the model is deterministic anyway."""
    timeout: float | None = None
    max_retries: int = 0
    streaming: bool = False
    """Route ``invoke`` through the streaming path (so callbacks see ``on_llm_new_token``)."""
    max_tool_rounds: int = Field(default=3, ge=1)
    """Upper bound on tool rounds in one user turn when tool results ask for more calls."""

    @property
    def _llm_type(self) -> str:
        return "offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "token_latency_ms": self.token_latency_ms,
            "max_tokens": self.max_tokens,
            "max_tool_rounds": self.max_tool_rounds,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider="offline", ls_model_name=self._name_for(kwargs), ls_model_type="chat")
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if max_tokens := kwargs.get("max_tokens", self.max_tokens):
            params["ls_max_tokens"] = max_tokens
        if stops := self._stops(stop):
            params["ls_stop"] = stops
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (any format LangChain converts to an OpenAI tool schema) and a ``tool_choice``.

        ``tool_choice``: ``None``/``"auto"`` lets the model decide, ``"none"`` forbids calls,
        ``"any"``/``"required"``/``True`` forces a call, a tool name (or OpenAI dict) forces that tool.
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        names = [t["function"]["name"] for t in formatted]
        normalize_tool_choice(tool_choice, names)  # fail at bind time on a tool choice that names no tool
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return super().bind(tools=formatted, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._decide(messages, stop, kwargs)
        if self.token_latency_ms:
            time.sleep(self.token_latency_ms * reply.output_tokens / 1000)
        return _result(reply)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._decide(messages, stop, kwargs)
        if self.token_latency_ms:
            await asyncio.sleep(self.token_latency_ms * reply.output_tokens / 1000)
        return _result(reply)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        delay = self.token_latency_ms / 1000
        for chunk in _chunks(self._decide(messages, stop, kwargs)):
            if delay:
                time.sleep(delay)
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        delay = self.token_latency_ms / 1000
        for chunk in _chunks(self._decide(messages, stop, kwargs)):
            if delay:
                await asyncio.sleep(delay)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _name_for(self, kwargs: dict[str, Any]) -> str:
        override = kwargs.get("model")
        return override if isinstance(override, str) and override else self.model_name

    def _stops(self, stop: list[str] | None) -> list[str]:
        return [*(self.stop or ()), *(stop or ())]

    def _decide(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> _Reply:
        """Everything the model 'thinks': tool calls for this turn, or the text answer."""
        reply = _Reply(model_name=self._name_for(kwargs), input_tokens=_input_tokens(messages))
        tools = [ToolSpec.from_openai(t) for t in kwargs.get("tools") or ()]
        mode, forced_name = normalize_tool_choice(kwargs.get("tool_choice"), [t.name for t in tools])
        turn = _Turn.of(messages)
        if tools and mode != "none":
            calls = self._plan(turn, tools, forced=mode == "any", forced_name=forced_name)
            if calls:
                reply.tool_calls = [_tool_call(messages, i, c) for i, c in enumerate(calls)]
                reply.finish_reason = "tool_calls"
                return reply
        text, cut = apply_stop(turn.answer(), self._stops(stop))
        limit = kwargs.get("max_tokens", self.max_tokens)
        tokens = split_tokens(text)
        if isinstance(limit, int) and len(tokens) > limit:
            text, cut = "".join(tokens[:limit]).rstrip(), False
            reply.finish_reason = "length"
        reply.text = text
        if cut:
            reply.finish_reason = "stop"
        return reply

    def _plan(self, turn: _Turn, tools: list[ToolSpec], *, forced: bool, forced_name: str | None) -> list[PlannedCall]:
        if not turn.results:
            return plan_tool_calls(turn.request, tools, forced=forced, forced_name=forced_name)
        if forced:
            # A forced call after tool results (e.g. a structured-output tool): prefer a tool not used yet,
            # with the answer so far as its text, so the loop ends instead of repeating the same call.
            pool = [t for t in tools if forced_name in (None, t.name)]
            pool.sort(key=lambda t: t.name in turn.called)
            return [PlannedCall(pool[0].name, fill_args(pool[0].parameters, turn.answer()))]
        last = turn.results[-1]
        if isinstance(last, ToolMessage) and turn.rounds < self.max_tool_rounds:
            directive = tool_directive(last.text, tools)
            if directive is not None:
                return [directive]
        return []


@dataclass
class _Turn:
    """The conversation seen from the latest user message: what was asked and which tools already ran."""

    request: str
    history: list[str]
    results: list[ToolMessage]
    calls: dict[str, ToolCall]
    rounds: int

    @property
    def called(self) -> set[str]:
        return {c["name"] for c in self.calls.values()}

    @classmethod
    def of(cls, messages: Sequence[BaseMessage]) -> _Turn:
        start = next((i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], HumanMessage)), -1)
        request = str(messages[start].text) if start >= 0 else (str(messages[-1].text) if messages else "")
        history = [str(m.text) for m in messages[: max(start, 0)] if isinstance(m, HumanMessage)]
        after = messages[start + 1 :] if start >= 0 else []
        calls: dict[str, ToolCall] = {}
        rounds = 0
        for message in after:
            if isinstance(message, AIMessage) and message.tool_calls:
                rounds += 1
                calls.update({c["id"] or "": c for c in message.tool_calls})
        results = [m for m in after if isinstance(m, ToolMessage)]
        return cls(request, history, results, calls, rounds)

    def answer(self) -> str:
        """The final text: phrased from this turn's tool results, or written from the request."""
        if not self.results:
            return reply_without_tools(self.request, self.history)
        parts = []
        for result in self.results:
            call = self.calls.get(result.tool_call_id)
            name = call["name"] if call else (result.name or "tool")
            args = call["args"] if call else {}
            parts.append(format_tool_result(name, args, result.text, is_error=result.status == "error"))
        return "\n\n".join(parts)


def _input_tokens(messages: Sequence[BaseMessage]) -> int:
    total = 0
    for message in messages:
        total += count_tokens(message.text) + 1
        if isinstance(message, AIMessage):
            total += sum(count_tokens(json.dumps(c["args"])) + 1 for c in message.tool_calls)
    return max(total, 1)


def _tool_call(messages: Sequence[BaseMessage], index: int, call: PlannedCall) -> ToolCall:
    """A tool call with an id that is deterministic yet unique within the conversation."""
    args = json.dumps(call.args, sort_keys=True, ensure_ascii=False)
    seed = f"{len(messages)}|{index}|{call.name}|{args}|{messages[-1].text if messages else ''}"
    call_id = "call_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
    return ToolCall(name=call.name, args=call.args, id=call_id, type="tool_call")


def _result(reply: _Reply) -> ChatResult:
    message = AIMessage(
        content=reply.text,
        tool_calls=reply.tool_calls,
        usage_metadata=reply.usage(),
        response_metadata=reply.metadata(),
    )
    return ChatResult(generations=[ChatGeneration(message=message)])


def _chunks(reply: _Reply) -> Iterator[ChatGenerationChunk]:
    """The reply as stream chunks; the last carries usage, metadata and ``chunk_position="last"``."""
    messages: list[AIMessageChunk] = []
    if reply.tool_calls:
        for index, (call, pieces) in enumerate(zip(reply.tool_calls, reply.pieces(), strict=True)):
            for i, piece in enumerate(pieces):
                first = i == 0
                chunk = tool_call_chunk(
                    name=call["name"] if first else None, args=piece, id=call["id"] if first else None, index=index
                )
                messages.append(AIMessageChunk(content="", tool_call_chunks=[chunk]))
    else:
        messages = [AIMessageChunk(content=token) for token in split_tokens(reply.text)] or [AIMessageChunk(content="")]
    last = messages[-1]
    last.usage_metadata = reply.usage()
    last.response_metadata = reply.metadata()
    last.chunk_position = "last"
    for message in messages:
        yield ChatGenerationChunk(message=message)
