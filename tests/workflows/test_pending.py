"""A run paused for approval: it blocks its session until answered, answers with the template that
paused, and expires after ``limits.approval_ttl_s`` when it had no session of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.agents.factory import AgentFactory
from agent_runtime.errors import ConflictError, SessionNotFoundError
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.sessions.manager import SessionManager
from agent_runtime.sessions.sqlite import SqliteSessionStore
from agent_runtime.settings import LimitSettings, Settings
from tests.helpers import ManualClock
from tests.workflows.conftest import PRINCIPAL, ctx, register_gated, register_release

ASK = 'use publish {"text": "launch"}'


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_a_pending_approval_blocks_new_runs_of_its_session(executor: AgentExecutor, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    register_gated(executor.factory, calls)
    first = await executor.execute_async(ctx(ASK, "gated", session_id="ses_shared", metadata={"create_session": True}))
    assert first.status == "interrupted"
    with pytest.raises(ConflictError, match="waiting for approval") as refused:
        await executor.execute_async(ctx('use publish {"text": "other"}', "gated", session_id="ses_shared"))
    assert refused.value.details["pending_run_id"] == first.run_id
    done = await executor.resume_async("ses_shared", "approve", principal=PRINCIPAL)
    assert done.status == "completed" and _calls(calls) == ["launch"]  # the first run's call, not the refused one
    later = await executor.execute_async(ctx("a haiku about spring", "writer", session_id="ses_shared"))
    assert later.status == "completed"
    session = await executor.session_manager.get_session("ses_shared", tenant="acme")  # type: ignore[union-attr]
    assert "pending_run" not in session.metadata


async def test_resume_uses_the_template_that_paused(executor: AgentExecutor, tmp_path: Path) -> None:
    """A session created for one template can hold a paused run of another: the resume runs that one."""
    calls = tmp_path / "calls.txt"
    register_gated(executor.factory, calls)
    sessions = executor.session_manager
    assert sessions is not None
    await sessions.create_session("ann", tenant="acme", template="writer", session_id="ses_mixed")
    paused = await executor.execute_async(ctx(ASK, "gated", session_id="ses_mixed"))
    assert paused.status == "interrupted"
    done = await executor.resume_async("ses_mixed", {"type": "edit", "args": {"text": "edited"}}, principal=PRINCIPAL)
    assert done.status == "completed" and done.template == "gated" and _calls(calls) == ["edited"]
    # LangChain keeps the call as the model proposed it; the tool's result says what ran instead
    assert done.tool_calls[0].args == {"text": "launch"} and '{"text": "edited"}' in str(done.tool_calls[0].output)


async def test_an_unanswered_approval_expires_after_its_ttl(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, limits=LimitSettings(approval_ttl_s=60))
    factory = AgentFactory(settings)
    calls = tmp_path / "calls.txt"
    register_gated(factory, calls)
    clock = ManualClock()
    sessions = SessionManager(SqliteSessionStore(tmp_path / "sessions.sqlite3"), ttl_s=3600, clock=clock)
    executor = AgentExecutor(factory, session_manager=sessions)
    try:
        paused = await executor.execute_async(ctx(ASK, "gated"))
        assert paused.status == "interrupted"
        session = await sessions.get_session(paused.run_id, tenant="acme")
        assert session.ttl_s == pytest.approx(60)  # the approval's TTL, not the sessions' hour
        clock.advance(61)
        with pytest.raises(SessionNotFoundError):  # expired on read, before any sweep
            await executor.resume_async(paused.run_id, "approve", principal=PRINCIPAL)
        assert await sessions.cleanup_expired() == 1
        with pytest.raises(SessionNotFoundError, match="approval expired"):
            await executor.resume_async(paused.run_id, "approve", principal=PRINCIPAL)
        assert _calls(calls) == []
    finally:
        await sessions.aclose()


async def test_a_paused_step_is_charged_once_by_the_run_that_paused(executor: AgentExecutor, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    register_gated(executor.factory, calls)
    register_release(executor.factory)
    paused = await executor.execute_async(ctx("a haiku about spring", "release"))
    assert paused.status == "interrupted"
    steps = {s["step"]: s for s in paused.metadata["steps"]}
    assert steps["post"]["status"] == "interrupted" and steps["post"]["usage"]["total_tokens"] > 0
    assert steps["post"]["template"] == "gated" and paused.metadata["templates"]["gated"]["total_tokens"] > 0
    assert sum(s["usage"]["total_tokens"] for s in steps.values()) == paused.usage.total_tokens
    assert [c.name for c in paused.tool_calls] == ["publish"]  # the call awaiting approval
    done = await executor.resume_async(paused.run_id, "approve", principal=PRINCIPAL)
    assert done.status == "completed" and _calls(calls) == ["notes"]
    (post,) = done.metadata["steps"]
    assert post["usage"]["total_tokens"] == done.usage.total_tokens > 0
    # together the pause and the resume pay what the same step pays when nothing stops it
    executor.factory.register_template({"name": "free", "tools": ["publish"]})
    register_release(executor.factory, "free", name="release_free")
    free = await executor.execute_async(ctx("a haiku about spring", "release_free"))
    free_post = next(s for s in free.metadata["steps"] if s["step"] == "post")
    assert steps["post"]["usage"]["total_tokens"] + post["usage"]["total_tokens"] == free_post["usage"]["total_tokens"]
    assert paused.usage.total_tokens + done.usage.total_tokens == free.usage.total_tokens
