"""A real search tool over a local folder of markdown/text documents, ranked with BM25 (``bm25s``).

Documents are split into passages (by heading, then by paragraph) and indexed once, lazily, on the
first query; the index is built under a lock so concurrent first queries build it only once.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from agent_runtime.errors import ConfigurationError
from agent_runtime.models.offline import register_offline_matcher

__all__ = [
    "DEFAULT_DOCUMENTS_DIR",
    "DocumentIndex",
    "Passage",
    "SearchInput",
    "default_documents_dir",
    "make_search_tool",
    "match_search",
]

DEFAULT_DOCUMENTS_DIR = Path(__file__).parent / "documents"
MAX_QUERY_CHARS = 1000
SUFFIXES = (".md", ".markdown", ".txt")
_PASSAGE_CHARS = 700
_SNIPPET_CHARS = 600


def default_documents_dir() -> Path:
    """The documents bundled with the package (LangChain agents, rate limiting, Redis, energy, ...)."""
    return DEFAULT_DOCUMENTS_DIR


@dataclass(frozen=True)
class Passage:
    """One ranked piece of a document."""

    file: str
    heading: str
    text: str
    score: float = 0.0


def _stem(words: Sequence[str]) -> list[str]:
    """A light English suffix stripper, so 'limits'/'limiting'/'limited' meet (bm25s takes any callable)."""
    stemmed = []
    for word in words:
        for suffix in ("ations", "ation", "ings", "ing", "ies", "ers", "ed", "es", "er", "ly", "s"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
                break
        stemmed.append(word)
    return stemmed


class DocumentIndex:
    """BM25 over the passages of every ``.md``/``.markdown``/``.txt`` file under ``documents_dir``."""

    def __init__(self, documents_dir: Path) -> None:
        self.documents_dir = documents_dir
        self._lock = threading.Lock()
        self._passages: list[Passage] | None = None
        self._retriever: Any = None

    @property
    def built(self) -> bool:
        return self._passages is not None

    def search(self, query: str, top_k: int) -> list[Passage]:
        """The ``top_k`` best passages with a positive score, best first."""
        import bm25s

        passages, retriever = self._ensure()
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=_stem, return_ids=False, show_progress=False)
        known = [t for t in tokens[0] if t in retriever.vocab_dict]
        if not known:
            return []
        ids, scores = retriever.retrieve([known], k=min(top_k, len(passages)), show_progress=False, n_threads=1)
        ranked = []
        for index, score in zip(ids[0], scores[0], strict=True):
            if float(score) > 0:
                passage = passages[int(index)]
                ranked.append(Passage(passage.file, passage.heading, passage.text, round(float(score), 3)))
        return ranked

    def _ensure(self) -> tuple[list[Passage], Any]:
        if self._passages is None:
            with self._lock:
                if self._passages is None:
                    self._retriever, self._passages = self._build()
        return self._passages, self._retriever

    def _build(self) -> tuple[Any, list[Passage]]:
        import bm25s

        if not self.documents_dir.is_dir():
            raise ToolException(f"The documents folder {str(self.documents_dir)!r} does not exist.")
        files = sorted(p for p in self.documents_dir.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        passages = [p for f in files for p in _split(f, f.relative_to(self.documents_dir).as_posix())]
        if not passages:
            raise ToolException(f"The documents folder {str(self.documents_dir)!r} holds no .md or .txt documents.")
        corpus = [f"{p.file.rsplit('.', 1)[0].replace('-', ' ')} {p.heading}\n{p.text}" for p in passages]
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(corpus, stopwords="en", stemmer=_stem, show_progress=False), show_progress=False)
        return retriever, passages


def _split(path: Path, name: str) -> list[Passage]:
    """Sections by markdown heading, each cut into paragraph groups of about ``_PASSAGE_CHARS``."""
    text = path.read_text(encoding="utf-8", errors="replace")
    passages: list[Passage] = []
    title = heading = ""
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            passages.append(Passage(name, heading or title or name, "\n\n".join(buffer)))
            buffer.clear()

    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        if not block:
            continue
        if match := re.match(r"^(#{1,6})\s+(.+?)\s*#*$", block.splitlines()[0]):
            flush()
            heading = match.group(2)
            title = title or heading
            block = "\n".join(block.splitlines()[1:]).strip()
            if not block:
                continue
        if buffer and sum(len(b) for b in buffer) + len(block) > _PASSAGE_CHARS:
            flush()
        buffer.append(block)
    flush()
    return passages


class SearchInput(BaseModel):
    query: str = Field(description="Words to look for in the documents, e.g. 'redis connection pool'.")


def make_search_tool(
    documents_dir: Path | str | None = None, top_k: int = 3, *, name: str = "search", description: str | None = None
) -> BaseTool:
    """A ``search(query)`` tool over ``documents_dir`` (default: the bundled documents).

    Raises:
        ConfigurationError: the folder does not exist or ``top_k`` is not positive.
    """
    folder = Path(documents_dir) if documents_dir is not None else DEFAULT_DOCUMENTS_DIR
    if not folder.is_dir():
        raise ConfigurationError(f"The search documents folder {str(folder)!r} does not exist.")
    if top_k < 1:
        raise ConfigurationError(f"top_k must be at least 1, got {top_k}.")
    index = DocumentIndex(folder)
    if name != "search":
        register_offline_matcher(name, match_search, formatter=_format_answer)

    def search(query: str) -> str:
        return _render(query, index.search(_checked_query(query), top_k))

    async def asearch(query: str) -> str:
        query = _checked_query(query)
        if not index.built:  # the first query builds the index; keep that off the event loop
            return await asyncio.to_thread(search, query)
        return _render(query, index.search(query, top_k))

    return StructuredTool.from_function(
        func=search,
        coroutine=asearch,
        name=name,
        description=description
        or "Search the local document collection and return the most relevant passages with their file "
        "names and BM25 scores. Use it to look up facts before answering.",
        args_schema=SearchInput,
        handle_tool_error=True,
    )


def _checked_query(query: str) -> str:
    query = " ".join(query.split())
    if not query:
        raise ToolException("The search query is empty; pass the words to look for.")
    if len(query) > MAX_QUERY_CHARS:
        raise ToolException(f"The search query is too long ({len(query)} characters; limit {MAX_QUERY_CHARS}).")
    return query


def _render(query: str, passages: list[Passage]) -> str:
    if not passages:
        return f'No documents matched "{query}".'
    blocks = [f'Top {len(passages)} passages for "{query}":']
    for rank, p in enumerate(passages, 1):
        snippet = p.text if len(p.text) <= _SNIPPET_CHARS else p.text[: _SNIPPET_CHARS - 1].rstrip() + "…"
        blocks.append(f"[{rank}] {p.file} > {p.heading} (score {p.score:.3f})\n{snippet}")
    return "\n\n".join(blocks)


_SEARCH_RE = re.compile(
    r"\b(?:search(?:\s+(?:the\s+)?(?:docs|documents|documentation))?(?:\s+for)?|look\s+up|lookup|look\s+for|"
    r"find(?:\s+(?:information|info|docs|documents|passages))?(?:\s+(?:on|about))?|research)\s+(.+)",
    re.I | re.S,
)
_DOCS_RE = re.compile(r"\bwhat\s+do\s+(?:the\s+)?(?:docs|documents)\s+say\s+about\s+(.+)", re.I | re.S)


def match_search(text: str) -> dict[str, Any] | None:
    """The offline model's matcher: "search/find/look up X" or "what do the docs say about X" -> X."""
    match = _DOCS_RE.search(text) or _SEARCH_RE.search(text)
    if match is None:
        return None
    query = re.split(r"\s+(?:and\s+then|then|and\s+(?:write|summari[sz]e|explain|analy[sz]e))\b", match.group(1))[0]
    query = re.sub(r"^(?:the\s+)?(?:docs|documents)\s+(?:for|about|on)\s+", "", query.strip(), flags=re.I)
    query = query.strip(" \t\n.?!:;\"'")
    return {"query": query} if query else None


def _format_answer(args: dict[str, Any], result: str) -> str:
    match = re.search(r"^\[1\] (.+?) > (.+?) \(score [\d.]+\)\n(.+?)(?:\n\n\[2\]|\Z)", result, re.M | re.S)
    query = args.get("query", "")
    if match is None:
        return f'I searched the documents for "{query}" but found nothing relevant.'
    file, heading, text = match.groups()
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    summary = " ".join(sentences[:3])
    others = len(re.findall(r"^\[\d+\] ", result, re.M)) - 1
    more = f" {others} more passage{'s' if others != 1 else ''} matched." if others > 0 else ""
    return f'From the documents ({file}, "{heading}"): {summary}{more}'


register_offline_matcher("search", match_search, formatter=_format_answer)
