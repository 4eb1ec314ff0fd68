"""``Runtime``: every component built once from ``Settings`` and wired together.

The CLI and the HTTP service both start from here, so a component is configured in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.settings import Settings, load_settings

__all__ = ["Runtime"]


@dataclass
class Runtime:
    settings: Settings
    factory: AgentFactory
    executor: AgentExecutor
    sessions: Any = None
    closers: list[Any] = field(default_factory=list)

    @classmethod
    async def create(cls, settings: Settings | None = None, *, collect_events: bool = False) -> Runtime:
        settings = settings or load_settings()
        factory = AgentFactory(settings)
        from agent_runtime.sessions import build_session_manager

        sessions = build_session_manager(settings)
        executor = AgentExecutor(factory, settings=settings, session_manager=sessions, collect_events=collect_events)
        return cls(settings=settings, factory=factory, executor=executor, sessions=sessions, closers=[sessions])

    async def aclose(self) -> None:
        await self.executor.aclose()
        for closer in reversed(self.closers):
            await closer.aclose()
