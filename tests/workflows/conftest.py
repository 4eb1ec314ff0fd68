"""Fixtures of the workflow tests: a factory with a few extra step templates, executors with sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.sessions.manager import SessionManager
from agent_runtime.sessions.memory import MemorySessionStore
from agent_runtime.types import AgentContext, Principal
from agent_runtime.workflows import register_workflow_spec

PRINCIPAL = Principal(tenant="acme", user="ann", scopes=frozenset({"admin"}))


def recording_tool(calls_file: Path):  # type: ignore[no-untyped-def]
    """A tool that appends each call to a file, so a test can prove whether it ever ran (in any process)."""

    def publish(text: str) -> str:
        """Publish the text."""
        with calls_file.open("a", encoding="utf-8") as out:
            out.write(text + "\n")
        return f"published {text}"

    return publish


def gated_template(tool: str = "publish") -> dict[str, object]:
    return {
        "name": "gated",
        "tools": [tool],
        "middleware": [{"name": "human_in_the_loop", "options": {"interrupt_on": {tool: True}}}],
    }


def register_gated(factory: AgentFactory, calls_file: Path) -> None:
    """The ``publish`` tool (recording its calls in ``calls_file``) and the ``gated`` template asking before it."""
    factory.register_tool(recording_tool(calls_file))
    factory.register_template(gated_template())


def register_release(factory: AgentFactory, post_template: str = "gated", name: str = "release") -> None:
    """A two-step workflow: ``draft`` (writer), then ``post``, which asks ``post_template`` to publish."""
    register_workflow_spec(
        factory,
        {
            "name": name,
            "steps": [
                {"name": "draft", "template": "writer"},
                {"name": "post", "template": post_template, "input": 'use publish {"text": "notes"}'},
            ],
        },
    )


@pytest.fixture
def factory() -> AgentFactory:
    return AgentFactory()


@pytest.fixture
def executor(factory: AgentFactory) -> AgentExecutor:
    return AgentExecutor(factory, session_manager=SessionManager(MemorySessionStore()), collect_events=True)


def ctx(text: str, template: str, **kw: object) -> AgentContext:
    return AgentContext(input=text, template=template, principal=PRINCIPAL, **kw)
