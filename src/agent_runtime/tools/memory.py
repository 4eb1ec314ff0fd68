"""``remember`` / ``recall``: an agent's long-term memory, kept in the run owner's part of the store.

They need a template whose ``memory`` is ``long_term`` (the factory then compiles the agent with the
store); every call is confined to the tenant and user the run belongs to, so what one user's agent
remembers in one conversation it recalls in the next, and nobody else's agent ever sees it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from langchain.tools import ToolRuntime
from langchain_core.tools import BaseTool, ToolException, tool

from agent_runtime.models.offline import register_offline_matcher

__all__ = ["MEMORY_NAMESPACE", "match_recall", "match_remember", "recall", "remember"]

MEMORY_NAMESPACE = ("memories",)
MAX_FACT_CHARS = 2_000
MAX_RECALLED = 50


def _store(runtime: ToolRuntime) -> Any:
    if runtime.store is None:
        raise ToolException("this agent has no long-term memory (its template's memory is not 'long_term')")
    return runtime.store


@tool
async def remember(fact: str, runtime: ToolRuntime) -> str:
    """Save a fact about the user to long-term memory, so later conversations can recall it."""
    fact = fact.strip()
    if not fact or len(fact) > MAX_FACT_CHARS:
        raise ToolException(f"a fact must hold 1 to {MAX_FACT_CHARS} characters")
    key = hashlib.sha256(fact.casefold().encode()).hexdigest()[:24]  # the same fact twice is one item
    await _store(runtime).aput(MEMORY_NAMESPACE, key, {"text": fact})
    return f"Remembered: {fact}"


@tool
async def recall(runtime: ToolRuntime, query: str = "") -> str:
    """List the facts long-term memory holds about the user (only those containing ``query`` if given)."""
    items = await _store(runtime).asearch(MEMORY_NAMESPACE, limit=MAX_RECALLED)
    facts = [str(item.value.get("text", "")) for item in items]
    wanted = [f for f in facts if query.casefold() in f.casefold()] if query else facts
    return "; ".join(sorted(wanted)) if wanted else "Nothing remembered yet."


_REMEMBER = re.compile(r"\bremember\s+(?:that\s+)?(?P<fact>.+)", re.I | re.S)
_RECALL = re.compile(r"\b(?:what do you (?:remember|know)|recall)\b", re.I)


def match_remember(text: str) -> dict[str, Any] | None:
    if _RECALL.search(text):
        return None
    found = _REMEMBER.search(text)
    return {"fact": found.group("fact").strip().rstrip(".")} if found else None


def match_recall(text: str) -> dict[str, Any] | None:
    return {"query": ""} if _RECALL.search(text) else None


def _format_remember(args: dict[str, Any], result: str) -> str:
    return f"I will remember that: {args.get('fact', '')}."


def _format_recall(args: dict[str, Any], result: str) -> str:
    return f"What I remember about you: {result}"


def memory_tools() -> dict[str, BaseTool]:
    return {"remember": remember, "recall": recall}


register_offline_matcher("remember", match_remember, formatter=_format_remember)
register_offline_matcher("recall", match_recall, formatter=_format_recall)
