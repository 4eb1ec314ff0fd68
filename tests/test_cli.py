"""The ``agent-runtime`` command as a user runs it: real subprocesses, real SQLite files, real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "agent_runtime.cli"]


def cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_RUNTIME_", "OPENAI_", "ANTHROPIC_"))}
    return {**base, "AGENT_RUNTIME_DATA_DIR": str(tmp_path / "data"), "AGENT_RUNTIME_LOG_LEVEL": "WARNING"}


def test_run_answers_through_a_real_tool_call(env: dict[str, str]) -> None:
    done = cli("run", "analyst", "what is 17*23+4?", env=env)
    assert "395" in done.stdout
    assert "tool calls 1" in done.stderr and "llm calls 2" in done.stderr and "tokens in" in done.stderr


def test_run_json_holds_the_contract_fields(env: dict[str, str]) -> None:
    out = json.loads(cli("run", "analyst", "what is 6*7?", "--json", env=env).stdout)
    assert "42" in out["output"]
    assert set(out["usage"]) >= {"input_tokens", "output_tokens", "total_tokens", "cost_usd"}
    assert out["usage"]["total_tokens"] == out["usage"]["input_tokens"] + out["usage"]["output_tokens"] > 0
    assert [c["name"] for c in out["tool_calls"]] == ["calculator"]
    assert out["run_id"].startswith("run_") and out["session_id"] is None


def test_run_stream_prints_tokens(env: dict[str, str]) -> None:
    done = cli("run", "writer", "a haiku about rain", "--stream", env=env)
    assert "rain" in done.stdout.lower() and len(done.stdout.splitlines()) >= 3


def test_unknown_template_is_a_clear_error(env: dict[str, str]) -> None:
    done = cli("run", "ghost", "hello", env=env, check=False)
    assert done.returncode == 2 and "template_not_found" in done.stderr


def test_templates_lists_the_defaults(env: dict[str, str]) -> None:
    names = [t["name"] for t in json.loads(cli("templates", "--json", env=env).stdout)]
    assert {"writer", "analyst", "searcher", "research_report"} <= set(names)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_session_resumes_in_another_process(
    env: dict[str, str], backend: str, request: pytest.FixtureRequest
) -> None:
    env = {**env, "AGENT_RUNTIME_STATE_BACKEND": backend}
    if backend == "redis":
        env["AGENT_RUNTIME_REDIS_URL"] = request.getfixturevalue("redis_url")
    first = json.loads(cli("run", "writer", "my name is Ada", "--session", "chat-ada", "--json", env=env).stdout)
    assert first["session_id"] == "chat-ada"
    second = cli("run", "writer", "what is my name?", "--session", "chat-ada", env=env)  # a new process
    assert "Ada" in second.stdout


def test_keys_lifecycle_and_usage(env: dict[str, str]) -> None:
    created = cli(
        "keys", "create", "--tenant", "acme", "--user", "bob", "--scope", "agents:run:*", "--rpm", "5", env=env
    )
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("ar_")
    as_json = json.loads(
        cli("keys", "create", "--tenant", "acme", "--user", "eve", "--scope", "admin", "--json", env=env).stdout
    )
    assert as_json["key"].startswith("ar_") and as_json["tenant"] == "acme"
    listed = cli("keys", "list", "--json", env=env).stdout
    assert key not in listed and as_json["key"] not in listed  # secrets are never shown again
    key_id = key.split("_")[1]
    assert any(k["key_id"] == key_id and k["rpm"] == 5 for k in json.loads(listed))
    updated = json.loads(cli("keys", "update", key_id, "--tpm", "900", "--lift", "rpm", env=env).stdout)
    assert updated["tpm"] == 900 and updated["rpm"] is None and updated["scopes"] == ["agents:run:*"]
    cli("keys", "revoke", key_id, env=env)
    assert "revoked" in cli("keys", "list", env=env).stdout
    again = cli("keys", "update", key_id, "--tpm", "1", env=env, check=False)
    assert again.returncode == 2 and "revoked" in again.stderr
    bad = cli("keys", "create", "--tenant", "a b", "--user", "x", "--scope", "admin", env=env, check=False)
    assert bad.returncode == 2 and "validation_error" in bad.stderr
    typo = cli("keys", "create", "--tenant", "acme", "--user", "x", "--scope", "session", env=env, check=False)
    assert typo.returncode == 2 and "unknown scopes ['session']" in typo.stderr
    bare = json.loads(cli("keys", "create", "--tenant", "acme", "--user", "y", "--json", env=env).stdout)
    assert bare["scopes"] == []  # no scope list: the defaults (sessions, usage), as before
    cli("run", "writer", "hello there", env=env)
    report = cli("usage", "--by", "template", env=env).stdout
    assert "writer" in report and "TOTAL" in report
    rows = json.loads(cli("usage", "--by", "model", "--format", "json", env=env).stdout)
    assert rows["totals"]["runs"] >= 1


@pytest.mark.parametrize(
    "args", [("writer", "hello"), ("research_report", "x", "--json"), ("writer", "hi", "--stream")]
)
def test_a_run_loses_none_of_its_events(env: dict[str, str], args: tuple[str, ...]) -> None:
    """The run's last events (run.completed) are handed to the bus before it closes at exit."""
    done = cli("run", *args, env=env)
    assert "lost" not in done.stderr, done.stderr


@pytest.mark.redis
def test_run_completed_reaches_the_bus_before_the_process_exits(env: dict[str, str], redis_url: str) -> None:
    import redis

    env = {**env, "AGENT_RUNTIME_EVENT_BUS": "redis", "AGENT_RUNTIME_REDIS_URL": redis_url}
    done = cli("run", "analyst", "what is 6*7?", "--json", env=env)
    assert "lost" not in done.stderr, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        events = [json.loads(fields["e"]) for _, fields in client.xrange("ar:events:default")]
    finally:
        client.close()
    assert sorted(e["type"] for e in events if e["run_id"] == run_id) == ["run.completed", "run.started", "tool.called"]


CYCLE = """\
workflows:
  - name: w
    steps:
      - {name: a, template: writer, after: [b]}
      - {name: b, template: writer, after: [a]}
"""


@pytest.mark.parametrize("args", [("templates",), ("templates", "--json"), ("run", "writer", "hi")])
def test_an_invalid_template_is_one_clean_error_line(
    env: dict[str, str], tmp_path: Path, args: tuple[str, ...]
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "cycle.yaml").write_text(CYCLE)
    done = cli(*args, env={**env, "AGENT_RUNTIME_TEMPLATES_DIR": str(templates)}, check=False)
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("error [invalid_template]: invalid workflow 'w'") and "cycle" in line


def test_every_command_reports_runtime_errors_the_same_way(env: dict[str, str]) -> None:
    """Reported by the command group, so subgroups and commands added elsewhere are covered too."""
    from click.testing import CliRunner

    from agent_runtime.cli import main

    bad_backend = {**env, "AGENT_RUNTIME_STATE_BACKEND": "redis", "AGENT_RUNTIME_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = CliRunner().invoke(main, ["keys", "list"], env=bad_backend)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # a clean exit, not a crash
    assert result.stderr.startswith("error [backend_unavailable]: ") and len(result.stderr.splitlines()) == 1
    result = CliRunner().invoke(main, ["consume", "--group", "g"], env=env)  # no trigger rules: a 500-class error
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("error [configuration_error]: no trigger rules")


def test_research_report_streams_each_step_live(env: dict[str, str]) -> None:
    done = cli("run", "research_report", "redis connection pool", "--stream", env=env)
    headers = [line for line in done.stderr.splitlines() if line.startswith("== step ")]
    assert headers == ["== step search ==", "== step analyze ==", "== step write =="]
    assert "[tool] search(" in done.stderr and "redis" in done.stdout.lower()


CAREFUL = """\
name: careful
tools: [calculator]
middleware:
  - name: human_in_the_loop
    options: {interrupt_on: {calculator: true}}
"""


@pytest.mark.parametrize(
    ("answer", "status", "expected"),
    [(["--approve"], "ok", "42"), (["--edit", '{"expression": "2+2"}'], "ok", "4"), (["--reject"], "error", None)],
)
def test_resume_answers_a_paused_run_from_another_process(
    env: dict[str, str], tmp_path: Path, answer: list[str], status: str, expected: str | None
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "careful.yaml").write_text(CAREFUL)
    env = {**env, "AGENT_RUNTIME_TEMPLATES_DIR": str(templates)}
    paused = json.loads(cli("run", "careful", "what is 6*7?", "--json", env=env).stdout)
    assert paused["status"] == "interrupted" and paused["output"] == ""
    pending = paused["interrupts"][0]["value"]["action_requests"][0]
    assert pending["name"] == "calculator" and pending["args"]["expression"].replace(" ", "") == "6*7"
    done = json.loads(cli("resume", paused["resume_id"], *answer, "--json", env=env).stdout)
    assert done["status"] == "completed" and done["run_id"] != paused["run_id"]
    (call,) = done["tool_calls"]
    assert call["name"] == "calculator" and call["status"] == status
    if expected is not None:
        assert call["output"].splitlines()[-1] == expected and expected in done["output"]
    else:
        assert "42" not in done["output"]  # the calculator never ran
    again = cli("resume", paused["resume_id"], "--approve", env=env, check=False)
    assert again.returncode == 2 and again.stderr.startswith("error [")  # answered once, not twice
