"""The onion: ``AgentMiddleware.process(context, next_call)`` wraps everything inside it.

The executor composes the chain once, outermost first. Every execution mode goes through the same
chain: for ``execute_stream`` the inner call returns only when the stream has ended (or was
abandoned by its consumer, in which case the result has ``status="cancelled"`` and the usage spent so
far), so code before ``await next_call(context)`` runs before the first token and code after it runs
after the last one.

This wraps a whole *run*. LangChain 1.x's own ``langchain.agents.middleware.AgentMiddleware`` wraps
steps *inside* the agent loop (each model or tool call); templates list those by name and the
factory passes them to ``create_agent``. Both kinds coexist: ours sees the run, theirs sees the loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from agent_runtime.types import AgentContext, AgentResult

__all__ = ["AgentMiddleware", "NextCall", "compose"]

NextCall = Callable[[AgentContext], Awaitable[AgentResult]]


class AgentMiddleware(ABC):
    """One layer of the onion. Instances are shared by concurrent runs: keep per-run state in
    ``context.state``, never on ``self``."""

    name: str = "middleware"

    @abstractmethod
    async def process(self, context: AgentContext, next_call: NextCall) -> AgentResult:
        """Handle one run: inspect or change ``context``, call ``next_call`` (or not, to short-circuit),
        inspect or change the result. Exceptions from inside travel outward through this call."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most middlewares hold nothing
        """Release resources (connections) held by the middleware."""


def compose(handler: NextCall, middlewares: Sequence[AgentMiddleware]) -> NextCall:
    """Wrap ``handler`` so that ``middlewares[0]`` is the outermost layer."""
    for middleware in reversed(middlewares):
        handler = partial(_call, middleware, handler)
    return handler


async def _call(middleware: AgentMiddleware, next_call: NextCall, context: AgentContext) -> AgentResult:
    return await middleware.process(context, next_call)
