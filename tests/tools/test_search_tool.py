"""BM25 search over a folder of documents: ranking, output, lazy thread-safe index, errors, offline matcher."""

from __future__ import annotations

import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from agent_runtime.errors import ConfigurationError
from agent_runtime.models import OfflineChatModel
from agent_runtime.tools import DocumentIndex, default_documents_dir, make_search_tool, match_search
from agent_runtime.tools.search import MAX_QUERY_CHARS


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bees.md").write_text(
        "# Bees\n\nHoney bees live in colonies with a single queen.\n\n## Pollination\n\n"
        "Bees pollinate flowers and crops while collecting nectar.\n"
    )
    (folder / "notes.txt").write_text("Volcanoes erupt molten lava and ash.\n")
    (folder / "image.png").write_bytes(b"\x89PNG not a document about bees")
    (folder / "nested").mkdir()
    (folder / "nested" / "tides.markdown").write_text("# Tides\n\nThe moon's gravity raises ocean tides twice a day.\n")
    return folder


def _files(result: str) -> list[str]:
    return re.findall(r"^\[\d+\] (\S+) > ", result, re.M)


def test_bundled_documents_rank_the_relevant_file_first() -> None:
    search = make_search_tool()
    result = search.invoke({"query": "redis connection pool timeouts"})
    assert _files(result)[0] == "redis.md"
    assert re.search(r"\(score \d+\.\d{3}\)", result)
    assert len(_files(result)) == 3
    assert len(list(default_documents_dir().glob("*.md"))) >= 8


@pytest.mark.parametrize(
    ("query", "file"),
    [
        ("GCRA token bucket sliding window", "rate-limiting.md"),
        ("histogram percentile latency scrape", "prometheus.md"),
        ("photovoltaic panels capacity factor", "solar-energy.md"),
        ("greenhouse gases carbon dioxide warming", "climate-change.md"),
        ("reserve then reconcile quota spend", "llm-cost-tracking.md"),
        ("consumer group offsets dead-letter", "kafka-event-streaming.md"),
        ("create_agent tool node checkpointer", "langchain-agents.md"),
    ],
)
def test_topics_find_their_documents(query: str, file: str) -> None:
    assert _files(make_search_tool(top_k=1).invoke({"query": query})) == [file]


def test_custom_folder_reads_markdown_and_text_recursively(docs: Path) -> None:
    search = make_search_tool(docs, top_k=5)
    assert _files(search.invoke({"query": "pollinate flowers"}))[0] == "bees.md"
    assert _files(search.invoke({"query": "volcano lava"})) == ["notes.txt"]
    assert _files(search.invoke({"query": "moon tides"})) == ["nested/tides.markdown"]
    assert "> Pollination (score" in search.invoke({"query": "pollinate"})


def test_no_match_is_a_normal_answer(docs: Path) -> None:
    assert make_search_tool(docs).invoke({"query": "quantum chromodynamics"}) == (
        'No documents matched "quantum chromodynamics".'
    )


@pytest.mark.parametrize(
    ("query", "message"), [("", "empty"), ("   \n", "empty"), ("x" * (MAX_QUERY_CHARS + 1), "too long")]
)
def test_bad_queries_are_tool_errors(docs: Path, query: str, message: str) -> None:
    search = make_search_tool(docs)
    assert message in search.invoke({"query": query})
    reply = search.invoke({"name": "search", "args": {"query": query}, "id": "c1", "type": "tool_call"})
    assert isinstance(reply, ToolMessage) and reply.status == "error"


def test_missing_folder_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        make_search_tool(tmp_path / "nope")
    with pytest.raises(ConfigurationError, match="top_k"):
        make_search_tool(tmp_path, top_k=0)


def test_folder_removed_or_empty_is_a_tool_error(docs: Path, tmp_path: Path) -> None:
    search = make_search_tool(docs)
    shutil.rmtree(docs)
    assert "does not exist" in search.invoke({"query": "bees"})
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no .md or .txt documents" in make_search_tool(empty).invoke({"query": "bees"})


def test_index_is_built_once_under_concurrency(docs: Path) -> None:
    builds: list[int] = []

    class CountingIndex(DocumentIndex):
        def _build(self) -> tuple[Any, Any]:
            builds.append(threading.get_ident())
            time.sleep(0.05)  # widen the window in which a racing thread could build a second time
            return super()._build()

    index = CountingIndex(docs)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: index.search("bees", 2), range(32)))
    assert len(builds) == 1
    assert all(r and r[0].file == "bees.md" for r in results)


async def test_async_search(docs: Path) -> None:
    search = make_search_tool(docs)
    first = await search.ainvoke({"query": "bees queen"})
    assert _files(first)[0] == "bees.md"
    assert await search.ainvoke({"query": "bees queen"}) == first
    assert "empty" in await search.ainvoke({"query": ""})


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("search for redis connection pools", "redis connection pools"),
        ("Search the docs for GCRA", "GCRA"),
        ("look up Prometheus histograms and then write a summary", "Prometheus histograms"),
        ("find information about solar capacity factor?", "solar capacity factor"),
        ("what do the docs say about quotas?", "quotas"),
    ],
)
def test_offline_matcher_extracts_the_query(text: str, query: str) -> None:
    assert match_search(text) == {"query": query}


@pytest.mark.parametrize("text", ["what is 17*23+4?", "a haiku about rain", "search", ""])
def test_offline_matcher_ignores_other_requests(text: str) -> None:
    assert match_search(text) is None


def test_offline_model_calls_a_renamed_search_tool(docs: Path) -> None:
    tool = make_search_tool(docs, name="kb_search")
    call = OfflineChatModel().bind_tools([tool]).invoke("look up bee pollination").tool_calls[0]
    assert (call["name"], call["args"]) == ("kb_search", {"query": "bee pollination"})
