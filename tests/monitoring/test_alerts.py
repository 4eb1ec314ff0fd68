"""The example alert rules are valid PromQL, fire as documented, and only name metrics we export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from agent_runtime.monitoring.metrics import RuntimeMetrics

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed; `make test` installs it (apt-get install prometheus)")
    return binary


def test_rules_are_valid() -> None:
    out = subprocess.run(
        [promtool(), "check", "rules", "alerts.yml"], cwd=RULES_DIR, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_fire_as_documented() -> None:
    out = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"], cwd=RULES_DIR, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_name_only_exported_metrics() -> None:
    rules = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in exprs for name in re.findall(r"agent_runtime_[a-z_]+", expr)}
    exported = {
        sample
        for metric in RuntimeMetrics().registry.collect()
        for sample in (metric.name, f"{metric.name}_total", f"{metric.name}_count", f"{metric.name}_sum")
    }
    assert used, "no metric referenced"
    assert used <= exported, used - exported
    docs = (RULES_DIR.parents[1] / "docs" / "monitoring.md").read_text()
    for rule in (r for group in rules["groups"] for r in group["rules"]):
        assert rule["alert"] in docs, f"{rule['alert']} is not documented"
