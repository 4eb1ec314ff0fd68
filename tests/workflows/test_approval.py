from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent_runtime.errors import AuthenticationError, ConflictError, SessionNotFoundError, ValidationError
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.types import AgentContext, AgentResult, Principal
from tests.workflows.conftest import PRINCIPAL, ctx, register_gated, register_release

ROOT = Path(__file__).resolve().parents[2]
ASK = 'use publish {"text": "launch"}'


def _worker(data_dir: Path, calls: Path, *args: str) -> AgentResult:
    done = subprocess.run(
        [sys.executable, "-m", "tests.workflows._approval_worker", str(data_dir), str(calls), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return AgentResult.model_validate_json(done.stdout.strip().splitlines()[-1])


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("decision", ["approve", "reject"])
@pytest.mark.parametrize(
    ("template", "text", "published"), [("gated", ASK, "launch"), ("release", "a haiku about spring", "notes")]
)
def test_interrupt_resumed_in_another_process(
    tmp_path: Path, decision: str, template: str, text: str, published: str
) -> None:
    """A gated template, and a workflow whose second step is gated: paused in one process, answered in
    another (the state comes from SQLite files)."""
    data, calls = tmp_path / "data", tmp_path / "calls.txt"
    paused = _worker(data, calls, "start", text, template)
    assert paused.status == "interrupted" and _calls(calls) == []
    pending = paused.metadata["interrupts"][0]["value"]["action_requests"]
    assert pending == [{"name": "publish", "args": {"text": published}, "description": pending[0]["description"]}]
    resume_id = paused.metadata["resume_id"]
    assert resume_id == paused.run_id == paused.session_id  # an implicit session named after the run

    done = _worker(data, calls, "resume", resume_id, json.dumps(decision))  # a new process: state came from SQLite
    assert done.status == "completed" and done.metadata["resumed"] is True and done.template == template
    assert [c.name for c in done.tool_calls] == ["publish"]
    if decision == "approve":
        assert _calls(calls) == [published] and f"published {published}" in done.output
        assert done.tool_calls[0].status == "ok"
    else:
        assert _calls(calls) == []  # the tool never ran
        assert done.tool_calls[0].status == "error" and "publish" in done.output
    if template == "release":  # the resume pays for the rest of the gated step, and only that
        assert [s["step"] for s in done.metadata["steps"]] == ["post"]
        assert done.metadata["steps"][0]["usage"]["total_tokens"] == done.usage.total_tokens > 0
    again = subprocess.run(
        [sys.executable, "-m", "tests.workflows._approval_worker", str(data), str(calls), "resume", resume_id],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode != 0 and "SessionNotFoundError" in again.stderr  # the approval session is gone


async def test_edit_in_a_named_session_and_no_second_resume(executor: AgentExecutor, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    register_gated(executor.factory, calls)
    context = ctx(ASK, "gated", session_id="ses_review", metadata={"create_session": True})
    paused = await executor.execute_async(context)
    assert paused.status == "interrupted" and paused.metadata["resume_id"] == "ses_review"
    with pytest.raises(ValidationError, match=r"needs `args`"):
        await executor.resume_async("ses_review", {"type": "edit"}, principal=PRINCIPAL)
    stranger = Principal(tenant="acme", user="bob", scopes=frozenset({"admin"}))
    with pytest.raises(SessionNotFoundError):
        await executor.resume_async("ses_review", "approve", principal=stranger)
    done = await executor.resume_async("ses_review", {"type": "edit", "args": {"text": "edited"}}, principal=PRINCIPAL)
    assert done.status == "completed" and _calls(calls) == ["edited"]
    assert done.usage.total_tokens > 0 and done.tool_calls[0].args == {"text": "launch"}  # as the model asked
    with pytest.raises(ConflictError, match="waiting for approval"):
        await executor.resume_async("ses_review", "approve", principal=PRINCIPAL)
    assert _calls(calls) == ["edited"]


async def test_a_workflow_step_waits_for_approval(executor: AgentExecutor, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    register_gated(executor.factory, calls)
    register_release(executor.factory)
    paused = await executor.execute_async(ctx("a haiku about spring", "release"))
    assert paused.status == "interrupted" and [s["step"] for s in paused.metadata["steps"]] == ["draft", "post"]
    assert paused.metadata["steps"][1]["status"] == "interrupted"  # its model call so far, paid by this run
    events = [e async for e in executor.resume_stream(paused.run_id, ["reject"], principal=PRINCIPAL)]
    final = AgentResult.model_validate(events[-1].data)
    assert final.status == "completed" and [s["step"] for s in final.metadata["steps"]] == ["post"]
    assert {e.step for e in events[:-1]} == {"post"} and _calls(calls) == []


async def test_resume_with_credentials_finds_the_session_of_their_tenant(tmp_path: Path) -> None:
    """Session ids are per tenant: credentials are checked before the lookup, so a key of ``acme``
    resumes ``acme``'s session even when the default tenant has a session of the same id."""
    from agent_runtime.agents.factory import AgentFactory
    from agent_runtime.orchestration.middleware.auth import AuthMiddleware
    from agent_runtime.security.keys import KeyService
    from agent_runtime.security.memory import MemoryKeyStore
    from agent_runtime.sessions import MemorySessionStore, SessionManager

    keys = KeyService(MemoryKeyStore())
    key, _ = await keys.create_key("acme", "ana", ["agents:run:*"])
    sessions = SessionManager(MemorySessionStore())
    executor = AgentExecutor(AgentFactory(), middlewares=[AuthMiddleware(keys)], session_manager=sessions)
    calls = tmp_path / "calls.txt"
    register_gated(executor.factory, calls)
    await sessions.create_session("local", session_id="ses_review", template="writer")  # tenant "default"
    paused = await executor.execute_async(
        AgentContext(
            input=ASK, template="gated", credentials=key, session_id="ses_review", metadata={"create_session": True}
        )
    )
    assert paused.status == "interrupted"
    done = await executor.resume_async("ses_review", "approve", credentials=f"Bearer {key}")
    assert done.status == "completed" and _calls(calls) == ["launch"]
    with pytest.raises(AuthenticationError):
        await executor.resume_async("ses_review", "approve", credentials="ar_0123456789abcdef_" + "x" * 43)
