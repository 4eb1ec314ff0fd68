from __future__ import annotations

import csv
import io
import json

import pytest

from agent_runtime.errors import ValidationError
from agent_runtime.monitoring.report import COLUMNS, format_rows, to_csv, to_json, to_table
from agent_runtime.monitoring.usage import UsageRow

ROWS = [
    UsageRow(
        by="model", key="gpt-4o", runs=2, input_tokens=1500, output_tokens=300, cached_tokens=100, cost_usd=0.00675
    ),
    UsageRow(by="model", key="offline", runs=10, input_tokens=1200, output_tokens=240, cost_usd=0.000324),
]


def test_table_is_aligned_with_totals() -> None:
    text = to_table(ROWS, "model")
    lines = text.splitlines()
    assert lines[0].split() == ["model", *COLUMNS]
    assert len({len(line) for line in lines}) == 1  # every line padded to the same width
    assert lines[-1].split() == ["TOTAL", "12", "2,700", "540", "100", "3,240", "0.007074"]
    assert "gpt-4o" in lines[2] and lines[2].rstrip().endswith("0.006750")


def test_empty_table_still_has_header_and_total() -> None:
    lines = to_table([], "user").splitlines()
    assert lines[0].startswith("user") and lines[-1].split()[:2] == ["TOTAL", "0"]


def test_csv_round_trips() -> None:
    parsed = list(csv.DictReader(io.StringIO(to_csv(ROWS, "model"))))
    assert [row["model"] for row in parsed] == ["gpt-4o", "offline"]
    assert float(parsed[0]["cost_usd"]) == pytest.approx(0.00675)
    assert int(parsed[1]["total_tokens"]) == 1440


def test_json_has_rows_and_totals() -> None:
    body = json.loads(to_json(ROWS, "model"))
    assert body["by"] == "model"
    assert body["rows"][0]["key"] == "gpt-4o" and body["rows"][0]["total_tokens"] == 1800
    assert body["totals"]["runs"] == 12
    assert body["totals"]["cost_usd"] == pytest.approx(0.007074)


def test_format_dispatch() -> None:
    assert format_rows(ROWS, "model", "json").startswith("{")
    assert format_rows(ROWS, "model", "csv").startswith("model,runs")
    with pytest.raises(ValidationError):
        format_rows(ROWS, "model", "xml")  # type: ignore[arg-type]
