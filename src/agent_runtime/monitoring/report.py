"""Usage rows as an aligned text table (CLI), CSV or JSON (exports and ``GET /v1/usage``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, Literal

from agent_runtime.errors import ValidationError
from agent_runtime.monitoring.usage import GroupBy, UsageRow

__all__ = ["COLUMNS", "ReportFormat", "format_rows", "to_csv", "to_json", "to_table", "totals"]

ReportFormat = Literal["table", "csv", "json"]
COLUMNS = ("runs", "input_tokens", "output_tokens", "cached_tokens", "total_tokens", "cost_usd")


def totals(rows: Sequence[UsageRow], by: GroupBy) -> UsageRow:
    total = UsageRow(by=by, key="TOTAL")
    for row in rows:
        total.runs += row.runs
        total.input_tokens += row.input_tokens
        total.output_tokens += row.output_tokens
        total.cached_tokens += row.cached_tokens
        total.cost_usd += row.cost_usd
    return total


def _cells(row: UsageRow) -> list[str]:
    values: list[Any] = [row.runs, row.input_tokens, row.output_tokens, row.cached_tokens, row.total_tokens]
    return [row.key, *(f"{v:,}" for v in values), f"{row.cost_usd:.6f}"]


def to_table(rows: Sequence[UsageRow], by: GroupBy) -> str:
    """Right-aligned numbers under a header, a rule, and a TOTAL line."""
    header = [by, *COLUMNS]
    body = [_cells(row) for row in rows]
    footer = _cells(totals(rows, by))
    widths = [max(len(line[i]) for line in [header, *body, footer]) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        first = line[0].ljust(widths[0])
        return "  ".join([first, *(cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True))])

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in body), rule, fmt(footer)])


def to_csv(rows: Sequence[UsageRow], by: GroupBy) -> str:
    """One header line (``by`` then :data:`COLUMNS`) and one line per row; cost unrounded to 10 places."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([by, *COLUMNS])
    for row in rows:
        data = row.to_dict()
        writer.writerow([row.key, *(data[column] for column in COLUMNS)])
    return buffer.getvalue()


def to_json(rows: Sequence[UsageRow], by: GroupBy) -> str:
    """``{"by": ..., "rows": [{key, runs, ...}], "totals": {...}}``, the body of ``GET /v1/usage``."""
    body = {"by": by, "rows": [row.to_dict() for row in rows], "totals": totals(rows, by).to_dict()}
    return json.dumps(body, indent=2)


def format_rows(rows: Sequence[UsageRow], by: GroupBy, fmt: ReportFormat = "table") -> str:
    if fmt == "table":
        return to_table(rows, by)
    if fmt == "csv":
        return to_csv(rows, by)
    if fmt == "json":
        return to_json(rows, by)
    raise ValidationError(f"unknown report format {fmt!r}; expected table, csv or json")
