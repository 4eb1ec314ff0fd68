"""Run every benchmark one after the other and write BENCHMARKS.md with their tables and commands.

    .venv/bin/python benchmarks/run_all.py [--only NAME ...] [--no-peer]

The LangGraph server peer (../shared/peers/langgraph-server, or --peer-dir) is installed into
``.peer-venv`` on first use (langgraph-cli[inmem] from PyPI), so the HTTP comparison runs side by side.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("overhead", "Executor overhead vs a bare create_agent (issue 2)", ["benchmarks/overhead.py"]),
    ("limits", "Rate limiter decisions/s vs the `limits` library (issue 3)", ["benchmarks/bench_limits.py"]),
    ("chain", "Full middleware chain vs no chain (issue 3)", ["benchmarks/bench_chain.py"]),
    ("sessions", "Session operations per backend vs raw Redis round trips (issue 4)", ["benchmarks/bench_sessions.py"]),
    ("http", "HTTP service vs LangGraph's own server (issue 5)", ["benchmarks/bench_http.py"]),
    ("event_bus", "Event bus vs the raw clients (issue 6)", ["benchmarks/bench_event_bus.py"]),
    ("monitoring", "Metrics and cost accounting cost per run (issue 7)", ["benchmarks/bench_monitoring.py"]),
    ("workflows", "Workflow orchestration overhead per step (issue 8)", ["benchmarks/bench_workflows.py"]),
]


def peer_langgraph(peer_dir: Path) -> str | None:
    venv = ROOT / ".peer-venv"
    binary = venv / "bin" / "langgraph"
    if not binary.exists():
        subprocess.run([PY, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        result = subprocess.run([*pip, "langgraph-cli[inmem]", "langchain", "langgraph-sdk", "httpx", "psutil"])
        if result.returncode != 0:
            return None
        subprocess.run([*pip, "-e", str(ROOT)], check=False)
    return str(binary) if binary.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--peer-dir", type=Path, default=ROOT.parent / "shared" / "peers" / "langgraph-server")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    sections = []
    for name, title, command in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        if not (ROOT / command[0]).exists():
            continue
        cmd = list(command)
        if name == "http" and not args.no_peer and args.peer_dir.exists():
            peer = peer_langgraph(args.peer_dir)
            if peer:
                cmd += ["--peer", peer]
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        started = time.monotonic()
        proc = subprocess.run([PY, *cmd], cwd=ROOT, capture_output=True, text=True, env={**os.environ})
        took = time.monotonic() - started
        body = proc.stdout.strip() or "(no output)"
        if proc.returncode != 0:
            body += f"\n\n**failed** (exit {proc.returncode}):\n\n```\n{proc.stderr.strip()[-3000:]}\n```"
        shown = " ".join(".venv/bin/python" if part == PY else part for part in [PY, *cmd])
        sections.append(f"## {title}\n\n`{shown}` ({took:.0f} s)\n\n{body}\n")
        print(body, flush=True)
    header = (
        "# Benchmarks\n\n"
        f"Written by `.venv/bin/python benchmarks/run_all.py` on {datetime.date.today()} "
        f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}). Each table compares "
        "side by side in one run; quote the ratios, not the absolute figures: the machines are shared and noisy.\n"
    )
    if args.only and args.out.exists():
        print("(--only: not rewriting BENCHMARKS.md)")
        return
    args.out.write_text(header + "\n" + "\n".join(sections))


if __name__ == "__main__":
    main()
