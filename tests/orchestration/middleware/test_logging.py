"""LoggingMiddleware: one JSON record per run with the run's facts; credentials never reach a log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from agent_runtime.errors import ProviderError
from agent_runtime.orchestration.middleware.logging import (
    REDACTED,
    JsonFormatter,
    LoggingMiddleware,
    RedactionFilter,
    configure_json_logging,
    redact,
)
from agent_runtime.types import Principal
from tests.orchestration.middleware._mw_helpers import FakeRun, ctx

KEY = "ar_0123456789abcdef_" + "S3cr3t-" * 6
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXZhbHVl"
ME = Principal(tenant="acme", user="alice", key_id="k1")


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test.runs.{id(stream)}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_one_json_record_per_run(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    mw = LoggingMiddleware(logger)
    context = ctx("analyst", principal=ME, request_id="req-1", model="offline")
    await mw.process(context, FakeRun(tokens=(12, 34), cost_usd=0.0042))
    (rec,) = records(stream)
    assert rec["level"] == "INFO" and rec["event"] == "run"
    expected = {
        "run_id": context.run_id,
        "request_id": "req-1",
        "tenant": "acme",
        "user": "alice",
        "template": "analyst",
        "model": "offline",
        "status": "completed",
        "input_tokens": 12,
        "output_tokens": 34,
        "total_tokens": 46,
        "cost_usd": 0.0042,
        "error_code": None,
    }
    assert {k: rec[k] for k in expected} == expected
    assert isinstance(rec["latency_ms"], float) and rec["latency_ms"] >= 0
    assert "input" not in rec


async def test_failed_and_abandoned_runs_are_logged(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    mw = LoggingMiddleware(logger)
    with pytest.raises(ProviderError):
        await mw.process(ctx(principal=ME), FakeRun(error=ProviderError("upstream 500")))
    await mw.process(ctx(principal=ME, streaming=True), FakeRun(tokens=(5, 2), status="cancelled"))
    failed, abandoned = records(stream)
    assert (failed["level"], failed["status"], failed["error_code"]) == ("WARNING", "failed", "provider_error")
    assert (abandoned["status"], abandoned["streaming"], abandoned["total_tokens"]) == ("cancelled", True, 7)


async def test_inputs_only_when_enabled_truncated_and_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    text = f"my key is {KEY} and my token Bearer {JWT} " + "x" * 500
    await LoggingMiddleware(logger, log_inputs=True, max_input_chars=120).process(ctx(input=text), FakeRun())
    await LoggingMiddleware(logger).process(ctx(input=text), FakeRun())
    with_input, without = records(stream)
    assert KEY not in stream.getvalue() and JWT not in stream.getvalue() and "S3cr3t" not in stream.getvalue()
    assert REDACTED in str(with_input["input"]) and len(str(with_input["input"])) <= 120
    assert "input" not in without


async def test_credentials_on_the_context_are_never_logged(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    error = ProviderError(f"provider said: invalid key {KEY}")
    with pytest.raises(ProviderError):
        await LoggingMiddleware(logger).process(ctx(credentials=f"Bearer {JWT}"), FakeRun(error=error))
    logger.exception("oops %s", KEY, exc_info=error)
    assert KEY not in stream.getvalue() and JWT not in stream.getvalue()


def test_handler_filter_scrubs_records_of_any_logger() -> None:
    stream = io.StringIO()
    handler = configure_json_logging("DEBUG", stream)
    try:
        other = logging.getLogger("agent_runtime.somewhere.else")
        other.info("calling with Authorization: Bearer %s", JWT, extra={"headers": {"x-api-key": KEY}})
        other.warning("openai key sk-proj-abcdefghijklmnop1234 leaked? %s", ["eyJa.eyJb.c"])
        try:
            raise ValueError(f"bad {KEY}")
        except ValueError:
            other.exception("failed")
    finally:
        logging.getLogger("agent_runtime").removeHandler(handler)
    out = stream.getvalue()
    assert KEY not in out and JWT not in out and "sk-proj-abcdefghijklmnop1234" not in out
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["headers"] == {"x-api-key": REDACTED}
    assert "ValueError" in lines[2]["exception"]


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "run run_abc finished in 12 ms; arbitrary words like bear and ar_ stay"
    assert redact(text) == text
    assert redact(("x", 1, None)) == ("x", 1, None)


def test_middleware_installs_the_filter_once() -> None:
    logger = logging.getLogger("test.filter.once")
    LoggingMiddleware(logger)
    LoggingMiddleware(logger)
    assert sum(isinstance(f, RedactionFilter) for f in logger.filters) == 1
