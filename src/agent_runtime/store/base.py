"""What every store backend offers besides LangGraph's ``BaseStore``: counting a prefix and closing.

The tenant wrapper needs to count a tenant's items before it accepts a new one; ``BaseStore`` has no
count, so each backend adds ``acount_items`` the cheap way its engine allows.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

__all__ = ["FILTER_OPERATORS", "CountingStore", "filter_problem", "matches_filter", "namespace_text", "value_size"]


@runtime_checkable
class CountingStore(Protocol):
    """A ``BaseStore`` that can count the items under a namespace prefix and be closed."""

    async def acount_items(self, prefix: tuple[str, ...]) -> int: ...

    async def aclose(self) -> None: ...


def namespace_text(namespace: tuple[str, ...]) -> str:
    """Labels joined by dots (labels never hold one), as LangGraph's SQL stores write them."""
    return ".".join(namespace)


def matches_filter(value: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    """LangGraph's search filter: equality on each key, or ``{"$eq"|"$ne"|"$gt"|"$gte"|"$lt"|"$lte": x}``."""
    for key, wanted in (filter or {}).items():
        actual = value.get(key)
        if isinstance(wanted, dict) and wanted and all(str(k).startswith("$") for k in wanted):
            if not all(_compare(actual, op, operand) for op, operand in wanted.items()):
                return False
        elif isinstance(wanted, dict) and isinstance(actual, dict):
            if not matches_filter(actual, wanted):
                return False
        elif actual != wanted:
            return False
    return True


FILTER_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})


def filter_problem(filter: dict[str, Any], path: str = "filter") -> str | None:
    """What is wrong with a search filter (an unknown ``$`` operator, a non-string key), or ``None``."""
    for key, wanted in filter.items():
        if not isinstance(key, str):
            return f"{path} keys must be strings"
        if key.startswith("$"):
            return f"{path}: operator {key!r} must be the value of a field ({sorted(FILTER_OPERATORS)})"
        if isinstance(wanted, dict):
            unknown = sorted(k for k in wanted if str(k).startswith("$") and k not in FILTER_OPERATORS)
            if unknown:
                return f"{path}.{key}: unsupported operators {unknown}; use {sorted(FILTER_OPERATORS)}"
            if not any(str(k).startswith("$") for k in wanted) and (problem := filter_problem(wanted, f"{path}.{key}")):
                return problem
    return None


def _compare(actual: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return bool(actual == operand)
    if op == "$ne":
        return bool(actual != operand)
    try:
        if op == "$gt":
            return bool(actual > operand)
        if op == "$gte":
            return bool(actual >= operand)
        if op == "$lt":
            return bool(actual < operand)
        if op == "$lte":
            return bool(actual <= operand)
    except TypeError:
        return False
    raise ValueError(f"unsupported filter operator {op!r}")


def value_size(value: dict[str, Any]) -> int:
    """Bytes of the value as JSON (what every backend writes, give or take its encoder)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())
