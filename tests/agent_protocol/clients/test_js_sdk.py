"""The JavaScript ``@langchain/langgraph-sdk`` (installed with npm from ``js/package-lock.json``) against a
real server: a streamed run, and an interrupt answered with ``command: {resume}`` as Agent Chat UI does."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.agent_protocol.core.conftest import APServer

JS = Path(__file__).parent / "js"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js (the machine's /usr/bin/node)")


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """``npm ci`` from the lock file (once; ``make services`` does it too)."""
    if not (JS / "node_modules" / "@langchain" / "langgraph-sdk").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, capture_output=True, timeout=300)
    return JS / "node_modules"


def test_streamed_run_and_resume_with_the_js_client(ap_sqlite: APServer, node_modules: Path) -> None:
    done = subprocess.run(
        ["node", str(JS / "stream_and_resume.mjs"), ap_sqlite.url, ap_sqlite.alice],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["events"][0] == "metadata" and "messages" in seen["events"] and "values" in seen["events"]
    assert "Ada" in seen["text"]
    assert seen["interrupts"] == 1 and seen["status"] == "interrupted"
    assert seen["tools"] and "42" in seen["tools"][0]
