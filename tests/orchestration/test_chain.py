"""The onion: order, short-circuit, errors outward, and every execution mode through it."""

from __future__ import annotations

import pytest

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import PermissionDeniedError, ProviderRateLimitError
from agent_runtime.models.offline import OfflineChatModel
from agent_runtime.orchestration.executor import AgentExecutor, RetryPolicy
from agent_runtime.orchestration.middleware.base import AgentMiddleware, NextCall, compose
from agent_runtime.types import AgentContext, AgentResult
from tests.helpers import FlakyModel, ProviderRateLimited, resolver_for


class Recorder(AgentMiddleware):
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.results: list[AgentResult] = []
        self.errors: list[BaseException] = []

    async def process(self, context: AgentContext, next_call: NextCall) -> AgentResult:
        self.log.append(f"{self.name}:in")
        context.metadata.setdefault("path", []).append(self.name)
        try:
            result = await next_call(context)
        except Exception as exc:
            self.errors.append(exc)
            self.log.append(f"{self.name}:error")
            raise
        self.log.append(f"{self.name}:out")
        result.metadata.setdefault("seen_by", []).append(self.name)
        self.results.append(result)
        return result


class Gate(AgentMiddleware):
    async def process(self, context: AgentContext, next_call: NextCall) -> AgentResult:
        if context.input.startswith("deny"):
            raise PermissionDeniedError("gate closed")
        if context.input.startswith("cached"):
            return AgentResult(run_id=context.run_id, template=context.template, model="cache", output="from cache")
        return await next_call(context)


def ctx(text: str, template: str = "writer") -> AgentContext:
    return AgentContext(input=text, template=template)


async def test_compose_orders_outermost_first() -> None:
    log: list[str] = []

    async def inner(context: AgentContext) -> AgentResult:
        log.append("inner")
        return AgentResult(run_id=context.run_id, template=context.template, model="m", output="ok")

    chain = compose(inner, [Recorder("a", log), Recorder("b", log), Recorder("c", log)])
    result = await chain(ctx("x"))
    assert log == ["a:in", "b:in", "c:in", "inner", "c:out", "b:out", "a:out"]
    assert result.metadata["seen_by"] == ["c", "b", "a"]


async def test_short_circuit_and_errors_travel_outward() -> None:
    log: list[str] = []
    outer, inner = Recorder("outer", log), Recorder("inner", log)
    executor = AgentExecutor(AgentFactory(), middlewares=[outer, Gate(), inner])
    result = await executor.execute_async(ctx("cached please"))
    assert result.output == "from cache" and inner.results == []
    with pytest.raises(PermissionDeniedError):
        await executor.execute_async(ctx("deny me"))
    assert isinstance(outer.errors[-1], PermissionDeniedError)
    assert log[-2:] == ["outer:in", "outer:error"]


async def test_context_changes_on_the_way_in_reach_the_agent() -> None:
    class Rewrite(AgentMiddleware):
        async def process(self, context: AgentContext, next_call: NextCall) -> AgentResult:
            context.input = "what is 20+22?"
            context.template = "analyst"
            return await next_call(context)

    result = await AgentExecutor(AgentFactory(), middlewares=[Rewrite()]).execute_async(ctx("anything"))
    assert "42" in result.output


async def test_every_execution_mode_goes_through_the_chain() -> None:
    log: list[str] = []
    recorder = Recorder("r", log)
    executor = AgentExecutor(AgentFactory(), middlewares=[recorder])
    await executor.execute_async(ctx("hello"))
    await executor.execute_with_retry(ctx("hello"))
    events = [e async for e in executor.execute_stream(ctx("hello"))]
    assert events[-1].type == "final"
    assert events[-1].data["metadata"]["seen_by"] == ["r"]  # the final event carries the processed result
    assert len(recorder.results) == 3 and all(r.status == "completed" for r in recorder.results)


def test_sync_execute_goes_through_the_chain() -> None:
    log: list[str] = []
    executor = AgentExecutor(AgentFactory(), middlewares=[Recorder("r", log)])
    executor.execute(ctx("hello"))
    assert log == ["r:in", "r:out"]


async def test_an_abandoned_stream_is_still_seen_with_its_usage() -> None:
    log: list[str] = []
    recorder = Recorder("r", log)
    slow = OfflineChatModel(token_latency_ms=5)
    executor = AgentExecutor(AgentFactory(model_resolver=resolver_for(slow)), middlewares=[recorder])
    stream = executor.execute_stream(ctx("write a long story about the sea and the rain and the wind"))
    tokens = 0
    async for event in stream:
        if event.type == "token":
            tokens += 1
            if tokens == 2:
                break
    await stream.aclose()
    assert log == ["r:in", "r:out"]
    (result,) = recorder.results
    assert result.status == "cancelled"
    assert result.usage.output_tokens >= 2 and result.usage.cost_usd > 0


async def test_each_retry_attempt_goes_through_the_chain() -> None:
    log: list[str] = []
    recorder = Recorder("r", log)
    model = FlakyModel(failures=2, error=lambda: ProviderRateLimited("busy"))
    executor = AgentExecutor(
        AgentFactory(model_resolver=resolver_for(model)), middlewares=[recorder], retry_policy=RetryPolicy(0.001, 0.01)
    )
    result = await executor.execute_with_retry(ctx("hello"), max_retries=3)
    assert result.attempts == 3
    assert [type(e) for e in recorder.errors] == [ProviderRateLimitError, ProviderRateLimitError]
    assert len(recorder.results) == 1


async def test_unexpected_middleware_error_fails_the_run_cleanly() -> None:
    class Broken(AgentMiddleware):
        async def process(self, context: AgentContext, next_call: NextCall) -> AgentResult:
            raise ZeroDivisionError("bug in middleware")

    executor = AgentExecutor(AgentFactory(), middlewares=[Broken()])
    with pytest.raises(Exception) as info:
        await executor.execute_async(ctx("hello"))
    assert info.value.code == "run_failed"
    events = [e async for e in executor.execute_stream(ctx("hello"))]
    assert [e.type for e in events] == ["error"]
