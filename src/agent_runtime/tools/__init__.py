"""Built-in tools: a safe calculator and a BM25 search over local documents.

Importing this package also registers their offline-model matchers, so the ``offline`` model calls
them when a request asks for a calculation or a search.
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.tools import BaseTool

from agent_runtime.tools.calculator import calculator, evaluate_expression, format_number, match_calculation
from agent_runtime.tools.search import (
    DEFAULT_DOCUMENTS_DIR,
    DocumentIndex,
    Passage,
    default_documents_dir,
    make_search_tool,
    match_search,
)

__all__ = [
    "DEFAULT_DOCUMENTS_DIR",
    "DocumentIndex",
    "Passage",
    "builtin_tools",
    "calculator",
    "default_documents_dir",
    "evaluate_expression",
    "format_number",
    "make_search_tool",
    "match_calculation",
    "match_search",
]


def builtin_tools(documents_dir: Path | str | None = None) -> dict[str, BaseTool]:
    """The built-in tools by name, ready for a tool registry (``search`` over ``documents_dir``)."""
    return {"calculator": calculator, "search": make_search_tool(documents_dir)}
