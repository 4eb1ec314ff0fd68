from __future__ import annotations

import asyncio

import pytest

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import (
    ConfigurationError,
    InputTooLargeError,
    ProviderError,
    ProviderRateLimitError,
    RunTimeoutError,
    TemplateNotFoundError,
    ToolExecutionError,
    ValidationError,
)
from agent_runtime.models.offline import OfflineChatModel
from agent_runtime.orchestration.executor import AgentExecutor, RetryPolicy
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext, StreamEvent
from tests.helpers import FlakyModel, ProviderRateLimited, resolver_for


def ctx(text: str, template: str = "analyst", **kw: object) -> AgentContext:
    return AgentContext(input=text, template=template, **kw)


@pytest.fixture
def executor() -> AgentExecutor:
    return AgentExecutor(AgentFactory(), collect_events=True)


async def test_execute_async_runs_a_real_tool_call(executor: AgentExecutor) -> None:
    result = await executor.execute_async(ctx("what is 17*23+4?"))
    assert "395" in result.output
    assert [c.name for c in result.tool_calls] == ["calculator"]
    assert result.tool_calls[0].args == {"expression": "17*23+4"} and result.tool_calls[0].output == "395"
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens > 0
    assert result.usage.cost_usd == pytest.approx(
        executor.prices.cost("offline", result.usage.input_tokens, result.usage.output_tokens), rel=1e-6
    )
    assert result.metadata["offline"] is True
    assert result.metadata["callbacks"]["tool_calls"] == 1
    assert result.status == "completed" and result.run_id.startswith("run_") and result.duration_ms > 0


def test_execute_is_a_sync_wrapper(executor: AgentExecutor) -> None:
    result = executor.execute(ctx("what is 2*21?"))
    assert "42" in result.output
    assert "42" in executor.execute(ctx("what is 6*7?")).output  # the portal loop is reused


async def test_sync_wrapper_refuses_inside_a_running_loop(executor: AgentExecutor) -> None:
    with pytest.raises(ConfigurationError, match="async"):
        executor.execute(ctx("what is 1+1?"))


async def _collect(executor: AgentExecutor, context: AgentContext, **kw: object) -> list[StreamEvent]:
    return [event async for event in executor.execute_stream(context, **kw)]


async def test_stream_yields_tokens_tool_events_and_final(executor: AgentExecutor) -> None:
    events = await _collect(executor, ctx("what is 17*23+4?"))
    types = [e.type for e in events]
    assert types[0] == "tool_call" and "tool_result" in types and types[-1] == "final"
    assert types.count("final") == 1 and "token" in types
    text = "".join(e.text for e in events if e.type == "token")
    assert events[-1].data["output"] == text and "395" in text
    assert events[-1].data["time_to_first_token_ms"] is not None


async def test_stream_of_writer_is_token_by_token(executor: AgentExecutor) -> None:
    events = await _collect(executor, ctx("a haiku about rain", "writer"))
    tokens = [e for e in events if e.type == "token"]
    assert len(tokens) > 5
    assert events[-1].data["usage"]["output_tokens"] == len(tokens)


async def test_stream_error_is_an_event(executor: AgentExecutor) -> None:
    events = await _collect(executor, ctx("hi", "ghost"))
    assert [e.type for e in events] == ["error"]
    assert events[0].data["code"] == "template_not_found"


@pytest.mark.parametrize(
    ("context", "error"),
    [
        (ctx("hi", "ghost"), TemplateNotFoundError),
        (ctx("   "), ValidationError),
        (ctx("x" * 40_000), InputTooLargeError),
        (ctx("nul\x00byte"), ValidationError),
    ],
)
async def test_bad_input_gives_typed_errors(executor: AgentExecutor, context: AgentContext, error: type) -> None:
    with pytest.raises(error):
        await executor.execute_async(context)


async def test_max_input_size_is_configurable() -> None:
    settings = Settings(limits={"max_input_chars": 10})
    executor = AgentExecutor(AgentFactory(settings))
    with pytest.raises(InputTooLargeError, match="limit is 10"):
        await executor.execute_async(ctx("what is 123456*2?"))


async def test_a_raising_tool_gives_tool_execution_error() -> None:
    factory = AgentFactory()

    def explode(text: str) -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    factory.register_tool(explode)
    factory.register_template({"name": "bomber", "tools": ["explode"]})
    with pytest.raises(ToolExecutionError, match=r"explode.*disk on fire"):
        await AgentExecutor(factory).execute_async(ctx('use explode {"text": "now"}', "bomber"))


async def test_a_raising_model_gives_provider_error() -> None:
    model = FlakyModel(failures=99, error=lambda: ProviderRateLimited("slow down"))
    executor = AgentExecutor(AgentFactory(model_resolver=resolver_for(model)))
    with pytest.raises(ProviderRateLimitError, match="slow down"):
        await executor.execute_async(ctx("hello", "writer"))
    model2 = FlakyModel(failures=99, error=lambda: KeyError("weird"))
    executor2 = AgentExecutor(AgentFactory(model_resolver=resolver_for(model2)))
    with pytest.raises(Exception) as info:
        await executor2.execute_async(ctx("hello", "writer"))
    assert info.value.code == "run_failed" and "KeyError" in str(info.value)


async def test_timeout_gives_run_timeout_error() -> None:
    slow = OfflineChatModel(token_latency_ms=200)
    executor = AgentExecutor(AgentFactory(model_resolver=resolver_for(slow)))
    with pytest.raises(RunTimeoutError):
        await executor.execute_async(ctx("a long poem about the sea", "writer", timeout_s=0.1))
    events = await _collect(executor, ctx("a long poem about the sea", "writer", timeout_s=0.3))
    assert events[-1].type == "error" and events[-1].data["code"] == "timeout"


async def test_cancelling_the_caller_cancels_the_run() -> None:
    slow = OfflineChatModel(token_latency_ms=100)
    executor = AgentExecutor(AgentFactory(model_resolver=resolver_for(slow)))
    task = asyncio.create_task(executor.execute_async(ctx("a long poem about the sea", "writer")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_retry_recovers_from_retriable_errors() -> None:
    model = FlakyModel(failures=2, error=lambda: ProviderRateLimited("busy"))
    executor = AgentExecutor(AgentFactory(model_resolver=resolver_for(model)), retry_policy=RetryPolicy(0.001, 0.01))
    result = await executor.execute_with_retry(ctx("hello", "writer"), max_retries=3)
    assert result.attempts == 3 and model.calls == 3


async def test_retry_gives_up_after_max_retries() -> None:
    model = FlakyModel(failures=10, error=lambda: ProviderRateLimited("busy"))
    executor = AgentExecutor(AgentFactory(model_resolver=resolver_for(model)), retry_policy=RetryPolicy(0.001, 0.01))
    with pytest.raises(ProviderRateLimitError) as info:
        await executor.execute_with_retry(ctx("hello", "writer"), max_retries=2)
    assert model.calls == 3 and info.value.details["attempts"] == 3
    with pytest.raises(ValidationError):
        await executor.execute_with_retry(ctx("hello", "writer"), max_retries=-1)


async def test_non_retriable_errors_are_not_retried() -> None:
    model = FlakyModel(failures=10, error=lambda: KeyError("bug"))
    executor = AgentExecutor(AgentFactory(model_resolver=resolver_for(model)), retry_policy=RetryPolicy(0.001, 0.01))
    with pytest.raises(ProviderError.__mro__[1]):
        await executor.execute_with_retry(ctx("hello", "writer"), max_retries=5)
    assert model.calls == 1


async def test_stream_retries_only_before_output() -> None:
    model = FlakyModel(failures=1, error=lambda: ProviderRateLimited("busy"))
    executor = AgentExecutor(AgentFactory(model_resolver=resolver_for(model)), retry_policy=RetryPolicy(0.001, 0.01))
    events = await _collect(executor, ctx("a haiku about rain", "writer"), max_retries=2)
    assert events[-1].type == "final" and events[-1].data["attempts"] == 2
    assert "error" not in [e.type for e in events]


def test_retry_policy_is_bounded_and_honours_retry_after() -> None:
    policy = RetryPolicy(0.5, 4.0)
    delays = [policy.delay(n, ProviderError("x")) for n in range(1, 10) for _ in range(20)]
    assert all(0 <= d <= 4.0 for d in delays) and len(set(delays)) > 10  # jitter
    assert policy.delay(1, ProviderRateLimitError("x", retry_after=3.0)) >= 3.0
