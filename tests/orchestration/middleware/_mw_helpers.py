"""Helpers for the middleware tests: a fake inner ``next_call`` (where the executor sits) and contexts."""

from __future__ import annotations

from typing import Any

from agent_runtime.types import AgentContext, AgentResult, Usage


class FakeRun:
    """Stands in for the executor: returns a result with the given usage, or raises ``error``."""

    def __init__(
        self,
        *,
        tokens: tuple[int, int] = (30, 70),
        cost_usd: float = 0.001,
        status: str = "completed",
        error: BaseException | None = None,
    ) -> None:
        self.tokens, self.cost_usd, self.status, self.error = tokens, cost_usd, status, error
        self.calls: list[AgentContext] = []

    async def __call__(self, context: AgentContext) -> AgentResult:
        self.calls.append(context.model_copy())
        if self.error is not None:
            raise self.error
        return AgentResult(
            run_id=context.run_id,
            template=context.template,
            model=context.model or "offline",
            output="hello",
            status=self.status,  # type: ignore[arg-type]
            usage=Usage(
                input_tokens=self.tokens[0],
                output_tokens=self.tokens[1],
                total_tokens=sum(self.tokens),
                cost_usd=self.cost_usd,
            ),
        )


def ctx(template: str = "writer", **kwargs: Any) -> AgentContext:
    return AgentContext(input=kwargs.pop("input", "hi"), template=template, **kwargs)
