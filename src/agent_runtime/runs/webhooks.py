"""Webhooks: a finished background run's record POSTed to the URL it was submitted with.

Who may be called: only ``https`` URLs (``http`` with ``allow_http``) whose host is in
``runs.webhooks.allowed_hosts`` (exact names, ``*.domain`` for subdomains, IP literals); an IP literal
is accepted only when listed itself, so a run cannot aim the server at its private network
(``check``, at submission: 422 naming ``webhook``). Redirects are not followed.

What is sent: the run's public record as JSON, signed with HMAC-SHA256 under the tenant's key
(``tenant_secret``: derived from the server's ``secret``, so one tenant cannot forge another's)::

    X-Agent-Runtime-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>

A receiver recomputes ``v1`` with its tenant's key, compares in constant time and refuses old ``t``
(``verify``). ``X-Agent-Runtime-Run-Id`` lets it drop a delivery it saw already.

How: in a background task per run (at most ``max_concurrent`` POSTs at once, ``max_pending`` queued),
retried on a transport error, 408, 425, 429 and 5xx with exponential backoff and full jitter, for at
most ``max_attempts`` and ``max_elapsed_s``. The outcome (``delivered`` / ``failed``, attempts, last
status) is written on the run (``Run.webhook_delivery``). A delivery still retrying when its process
stops is not resumed: the record then shows it ``pending``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import urlsplit

import httpx

from agent_runtime.errors import AgentRuntimeError, ValidationError
from agent_runtime.runs.base import RunRecordStore
from agent_runtime.runs.record import TERMINAL, Run, WebhookOutcome
from agent_runtime.settings import WebhookSettings

__all__ = ["SIGNATURE_HEADER", "WebhookSender", "sign", "tenant_secret", "verify"]

log = logging.getLogger("agent_runtime.runs.webhooks")

SIGNATURE_HEADER: Final = "X-Agent-Runtime-Signature"
RUN_ID_HEADER: Final = "X-Agent-Runtime-Run-Id"
MAX_URL_CHARS: Final = 2_048
_RETRIED: Final = frozenset({408, 425, 429})
_LABEL: Final = b"agent-runtime webhook v1:"


def tenant_secret(server_secret: str, tenant: str) -> str:
    """The key ``tenant``'s webhooks are signed with (hex), derived from the server's secret."""
    return hmac.new(server_secret.encode(), _LABEL + tenant.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance_s`` old (for receivers)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def _refuse(message: str) -> ValidationError:
    return ValidationError(message, details={"param": "webhook"})


def _host_allowed(host: str, allowed: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:  # an IP literal: only when listed itself (never through a wildcard)
        return any(_same_ip(address, entry) for entry in allowed)
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if host == entry or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


def _same_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        return ipaddress.ip_address(entry.strip("[]")) == address
    except ValueError:
        return False


class WebhookSender:
    """Checks webhook URLs and delivers finished runs to them.

    Args:
        store: where each delivery's outcome is written.
        client: the HTTP client (tests may pass one); made from the settings otherwise.
    """

    def __init__(
        self,
        settings: WebhookSettings,
        store: RunRecordStore,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.store = store
        self._client = client
        self._owns_client = client is None
        self._sleep = sleep
        self._jitter = jitter
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._tasks: set[asyncio.Task[None]] = set()

    def check(self, url: str) -> str:
        """``url`` if runs may be delivered to it; ``ValidationError`` (422, ``webhook``) otherwise."""
        cfg = self.settings
        if len(url) > MAX_URL_CHARS:
            raise _refuse(f"webhook URL longer than {MAX_URL_CHARS} characters")
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").rstrip(".")
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise _refuse(f"webhook is not a valid URL: {exc}") from None
        schemes = ("https", "http") if cfg.allow_http else ("https",)
        if parts.scheme not in schemes:
            raise _refuse(f"webhook URL scheme must be {' or '.join(schemes)}")
        if not host or parts.username is not None or parts.password is not None:
            raise _refuse("webhook URL needs a host and no credentials")
        if not _host_allowed(host, cfg.allowed_hosts):
            raise _refuse(f"webhook host {host!r} is not in the server's allow-list")
        return url

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(max_connections=self.settings.max_concurrent)
            self._client = httpx.AsyncClient(
                timeout=self.settings.timeout_s, limits=limits, follow_redirects=False, trust_env=False
            )
        return self._client

    async def deliver(self, run: Run) -> None:
        """``on_finished`` hook: start delivering ``run`` if it has a webhook (never waits for the receiver)."""
        if run.webhook is None or run.status not in TERMINAL:
            return
        if len(self._tasks) >= self.settings.max_pending:
            log.warning("webhook of run %s dropped: %d deliveries pending", run.run_id, len(self._tasks))
            await self._record(run, WebhookOutcome(status="failed", last_error="too many deliveries pending"))
            return
        task = asyncio.get_running_loop().create_task(self._deliver(run), name=f"agent-runtime-webhook-{run.run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _body(self, run: Run) -> bytes:
        record = run.public()
        record.pop("webhook_delivery", None)
        return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()

    async def _deliver(self, run: Run) -> None:
        cfg = self.settings
        assert run.webhook is not None and cfg.secret is not None
        key = tenant_secret(cfg.secret.get_secret_value(), run.tenant)
        body = self._body(run)
        outcome = WebhookOutcome()
        started = time.monotonic()
        while True:
            outcome.attempts += 1
            retry = await self._attempt(run.webhook, key, body, run.run_id, outcome)
            delay = min(cfg.backoff_max_s, cfg.backoff_s * 2 ** (outcome.attempts - 1)) * self._jitter()
            out_of_time = time.monotonic() - started + delay > cfg.max_elapsed_s
            if outcome.status == "delivered" or not retry or outcome.attempts >= cfg.max_attempts or out_of_time:
                break
            await self._record(run, outcome)
            await self._sleep(delay)
        if outcome.status != "delivered":
            outcome.status = "failed"
            log.warning("webhook of run %s failed after %d attempt(s)", run.run_id, outcome.attempts)
        await self._record(run, outcome)

    async def _attempt(self, url: str, key: str, body: bytes, run_id: str, outcome: WebhookOutcome) -> bool:
        """One POST; updates ``outcome``; whether a failure is worth retrying."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "agent-runtime-webhooks",
            SIGNATURE_HEADER: sign(key, body, int(time.time())),
            RUN_ID_HEADER: run_id,
        }
        try:
            async with self._slots:
                response = await self._http().post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            outcome.last_status, outcome.last_error = None, f"{type(exc).__name__}: {exc}"[:300]
            return True
        outcome.last_status = response.status_code
        if response.is_success:
            outcome.status, outcome.last_error, outcome.delivered_at = "delivered", None, time.time()
            return False
        outcome.last_error = f"HTTP {response.status_code}"
        return response.status_code >= 500 or response.status_code in _RETRIED

    async def _record(self, run: Run, outcome: WebhookOutcome) -> None:
        try:
            await self.store.transition(run.run_id, TERMINAL, webhook_delivery=outcome.model_dump())
        except AgentRuntimeError as exc:
            log.warning("webhook outcome of run %s not recorded: %s", run.run_id, exc.message)

    async def flush(self) -> None:
        """Wait until every delivery started so far has ended (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None and self._owns_client:
            client, self._client = self._client, None
            await client.aclose()
