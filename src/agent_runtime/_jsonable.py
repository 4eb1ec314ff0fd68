"""Graph state as JSON: what the run event log stores and every protocol shows of a graph's state."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final

from langgraph.types import Interrupt
from pydantic import BaseModel

__all__ = ["MAX_DEPTH", "jsonable"]

MAX_DEPTH: Final = 64


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of graph state: LangChain messages (pydantic) as their dicts, interrupts as
    ``{value, id}``, dataclasses as dicts, anything else unknown as its string."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if depth > MAX_DEPTH:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, Interrupt):
        return {"value": jsonable(value.value, depth + 1), "id": value.id}
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, depth + 1)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
