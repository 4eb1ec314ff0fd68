"""One structured JSON log record per run (stdlib ``logging``), with secrets scrubbed from every record.

``LoggingMiddleware`` writes to the ``agent_runtime.runs`` logger by default; ``JsonFormatter`` renders
records as one JSON object per line and ``RedactionFilter`` removes anything shaped like an API key
(``ar_<id>_<secret>``), a ``Bearer`` credential or a JWT from messages, arguments and extra fields.
``configure_json_logging`` installs both on a handler; a filter on a handler also covers records
propagated from other loggers (a filter on a logger would not).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.orchestration.middleware.base import AgentMiddleware, NextCall
from agent_runtime.tracing.logs import trace_ids
from agent_runtime.types import AgentContext, AgentResult

__all__ = ["JsonFormatter", "LoggingMiddleware", "RedactionFilter", "configure_json_logging", "redact"]

RUN_LOGGER = "agent_runtime.runs"
REDACTED = "[REDACTED]"
_SECRET = re.compile(
    r"\bar_[0-9a-f]{16}_[A-Za-z0-9_\-]{8,}"  # our API keys
    r"|\b[Bb]earer\s+[A-Za-z0-9._~+/=\-]+"  # any bearer credential
    r"|\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"  # JWTs (base64url JSON header)
    r"|\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}"  # provider API keys
)
_STD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(value: Any) -> Any:
    """``value`` with every secret-looking substring replaced, recursing into dicts, lists and tuples."""
    if isinstance(value, str):
        return _SECRET.sub(REDACTED, value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


class RedactionFilter(logging.Filter):
    """Scrub secrets from the message, its arguments, extra fields and exception text of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):  # already scrubbed by a filter earlier on its way
            return True
        record._redacted = True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        for key, value in list(vars(record).items()):
            if key not in _STD_ATTRS:
                setattr(record, key, redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and every extra field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        out.update(trace_ids())
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, default=str, ensure_ascii=False)


QUIET_LOGGERS = ("aiosqlite",)
"""Libraries whose DEBUG lines carry the data they handle; kept at WARNING whatever ``LOG_LEVEL`` is."""


def configure_json_logging(level: str | int = "INFO", stream: Any = None) -> logging.Handler:
    """Send ``agent_runtime`` logs to ``stream`` (stderr) as redacted JSON lines; returns the handler.

    Idempotent (a second call replaces the first handler), and the records do not also propagate to
    the root logger, so each run is logged exactly once."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactionFilter())
    logger = logging.getLogger("agent_runtime")
    for old in [h for h in logger.handlers if isinstance(h.formatter, JsonFormatter)]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    for name in QUIET_LOGGERS:  # they log every statement with its parameters: inputs, outputs, records
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


class LoggingMiddleware(AgentMiddleware):
    """Log one record per run, after it ends (for streams: after the last token or the abandonment).

    Args:
        logger: defaults to ``agent_runtime.runs``; a ``RedactionFilter`` is added to it.
        log_inputs: include the (redacted, truncated) input text.
        max_input_chars: truncation length for logged input.
    """

    name = "logging"

    def __init__(self, logger: logging.Logger | None = None, *, log_inputs: bool = False, max_input_chars: int = 200):
        self.logger = logger or logging.getLogger(RUN_LOGGER)
        if not any(isinstance(f, RedactionFilter) for f in self.logger.filters):
            self.logger.addFilter(RedactionFilter())
        self.log_inputs = log_inputs
        self.max_input_chars = max_input_chars

    async def process(self, context: AgentContext, next_call: NextCall) -> AgentResult:
        started = time.perf_counter()
        try:
            result = await next_call(context)
        except BaseException as exc:
            self._emit(context, None, exc, started)
            raise
        self._emit(context, result, None, started)
        return result

    def _emit(
        self, context: AgentContext, result: AgentResult | None, exc: BaseException | None, started: float
    ) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        usage = result.usage if result is not None else None
        fields: dict[str, Any] = {
            "event": "run",
            "run_id": context.run_id,
            "request_id": context.request_id,
            "session_id": context.session_id,
            "tenant": context.tenant,
            "user": context.user,
            "template": context.template,
            "model": result.model if result is not None else context.model,
            "streaming": context.streaming,
            "attempt": context.attempt,
            "status": result.status if result is not None else _status_of(exc),
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "total_tokens": usage.total_tokens if usage else None,
            "cost_usd": usage.cost_usd if usage else None,
            "error_code": _code_of(exc) if exc is not None else (result.error or {}).get("code") if result else None,
        }
        if self.log_inputs:
            fields["input"] = context.input[: self.max_input_chars]
        level = logging.INFO if exc is None else logging.WARNING
        self.logger.log(level, "run %s %s", context.run_id, fields["status"], extra=fields)


def _code_of(exc: BaseException) -> str:
    if isinstance(exc, AgentRuntimeError):
        return exc.code
    return "cancelled" if type(exc).__name__ == "CancelledError" else "internal_error"


def _status_of(exc: BaseException | None) -> str:
    return "cancelled" if exc is not None and _code_of(exc) == "cancelled" else "failed"
