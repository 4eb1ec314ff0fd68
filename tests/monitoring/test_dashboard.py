"""``/dashboard``: access control over HTTP, and the live page in a real headless Chromium.

The browser test serves the real app (``create_app``) plus the dashboard router with uvicorn, makes
runs over HTTP (completed, rate-limited, failed), signs in through the login form, waits until every
chart holds data and saves a screenshot to ``tests/artifacts/dashboard.png``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from agent_runtime.monitoring.timeseries import RunSeries
from agent_runtime.runtime import Runtime
from agent_runtime.server.app import create_app
from agent_runtime.server.dashboard import COOKIE_NAME, build_dashboard_router
from agent_runtime.server.deps import authenticate
from agent_runtime.settings import Settings
from tests.conftest import free_port
from tests.helpers import until

CHROMIUM = os.environ.get("AGENT_RUNTIME_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard.png"
CHARTS = ["chart-runs", "chart-latency", "chart-tokens", "chart-cost", "chart-problems", "chart-templates"]


class ManualClock:
    """The series' clock: the browser test moves it a minute at a time to fill a realistic window."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _wire(runtime: Runtime, series: RunSeries, **options: Any) -> Any:
    """The service's own app; ``options`` (refresh, window) need a router of the test's own."""
    assert runtime.series is series
    if not options:
        return create_app(runtime)
    app = create_app(runtime)
    app.router.routes = [r for r in app.router.routes if not getattr(r, "path", "").startswith("/dashboard")]
    app.include_router(build_dashboard_router(series, authenticate, **options))
    return app


# -- access control over HTTP (in process) -----------------------------------------------------------
@pytest.fixture
async def asgi(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime, RunSeries]]:
    series = RunSeries()
    runtime = await Runtime.create(Settings(state_backend="memory", data_dir=tmp_path), series=series)
    app = _wire(runtime, series)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield client, runtime, series
    await runtime.aclose()


async def test_page_without_credentials_is_a_401_login_form(asgi: tuple[httpx.AsyncClient, Runtime, RunSeries]) -> None:
    client, _, _ = asgi
    page = await client.get("/dashboard")
    assert page.status_code == 401
    assert page.headers["www-authenticate"] == "Bearer"
    assert 'action="/dashboard/login"' in page.text and "chart-runs" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    data = await client.get("/dashboard/data")
    assert data.status_code == 401
    assert data.json()["error"]["code"] == "unauthenticated"
    bad = await client.get("/dashboard/data", headers={"Authorization": "Bearer ar_not_a_key"})
    assert bad.status_code == 401


async def test_only_admin_keys_open_it(asgi: tuple[httpx.AsyncClient, Runtime, RunSeries]) -> None:
    client, runtime, _ = asgi
    user, _ = await runtime.keys.create_key("acme", "alice", ["agents:run:*"])
    admin, record = await runtime.keys.create_key("acme", "root", ["admin"])
    assert (await client.get("/dashboard/data", headers={"Authorization": f"Bearer {user}"})).status_code == 403
    refused = await client.post("/dashboard/login", data={"key": user})
    assert refused.status_code == 403 and COOKIE_NAME not in refused.cookies
    assert user not in refused.text
    wrong = await client.post("/dashboard/login", data={"key": "ar_wrong"})
    assert wrong.status_code == 401 and "not accepted" in wrong.text

    login = await client.post("/dashboard/login", data={"key": admin})
    assert login.status_code == 303 and login.headers["location"] == "/dashboard"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dashboard" in cookie
    page = await client.get("/dashboard")  # the client's jar now sends the cookie
    assert page.status_code == 200 and 'id="chart-runs"' in page.text
    assert (await client.get("/dashboard/data")).status_code == 200
    await runtime.keys.revoke_key(record.key_id)
    assert (await client.get("/dashboard/data")).status_code == 401  # revoking the key ends the session
    out = await client.post("/dashboard/logout")
    assert out.status_code == 303 and COOKIE_NAME in out.headers["set-cookie"]


async def test_each_admin_sees_only_their_tenant(asgi: tuple[httpx.AsyncClient, Runtime, RunSeries]) -> None:
    client, runtime, _ = asgi
    acme_admin, _ = await runtime.keys.create_key("acme", "root", ["admin"])
    evil_admin, _ = await runtime.keys.create_key("evil", "root", ["admin"])
    operator, _ = await runtime.keys.create_key("ops", "sre", ["admin", "dashboard:fleet"])
    for _ in range(3):
        run = await client.post(
            "/v1/runs", json={"template": "writer", "input": "hello"}, headers={"Authorization": f"Bearer {acme_admin}"}
        )
        assert run.status_code == 200

    def get(key: str, **params: Any) -> Any:
        return client.get("/dashboard/data", params=params, headers={"Authorization": f"Bearer {key}"})

    acme = (await get(acme_admin)).json()
    assert (acme["tenant"], acme["totals"]["runs"]) == ("acme", 3)
    assert acme["by_template"]["writer"]["runs"][-1] == 3
    evil = (await get(evil_admin)).json()
    assert (evil["tenant"], evil["totals"]["runs"], evil["by_template"]) == ("evil", 0, {})
    refused = await get(evil_admin, view="fleet")
    assert refused.status_code == 403 and "acme" not in refused.text
    fleet = (await get(operator, view="fleet")).json()
    assert (fleet["view"], fleet["totals"]["runs"]) == ("fleet", 3)
    assert (await get(operator, minutes=0)).status_code == 422


async def test_recent_runs_and_one_run_of_the_callers_tenant(
    asgi: tuple[httpx.AsyncClient, Runtime, RunSeries],
) -> None:
    client, runtime, _ = asgi
    acme, _ = await runtime.keys.create_key("acme", "root", ["admin"])
    evil, _ = await runtime.keys.create_key("evil", "root", ["admin"])
    user, _ = await runtime.keys.create_key("acme", "alice", ["agents:run:*"])
    ids = []
    for text in ("what is 6*7?", "what is 2+2?"):
        run = await client.post(
            "/v1/runs", json={"template": "analyst", "input": text}, headers={"Authorization": f"Bearer {acme}"}
        )
        assert run.status_code == 200, run.text
        ids.append(run.json()["run_id"])

    def get(path: str, key: str) -> Any:
        return client.get(path, headers={"Authorization": f"Bearer {key}"})

    async def finished() -> list[dict[str, Any]]:  # a foreground run's record is written just after its answer
        rows: list[dict[str, Any]] = (await get("/dashboard/runs", acme)).json()["runs"]
        return rows if all(row["status"] == "success" for row in rows) else []

    listed = await until(finished, "the two runs' records")
    assert [row["run_id"] for row in listed] == ids[::-1]  # newest first
    assert all(row["template"] == "analyst" for row in listed)
    assert all(row["total_tokens"] > 0 and row["duration_ms"] is not None for row in listed)
    assert (await get("/dashboard/runs", evil)).json()["runs"] == []
    assert (await get("/dashboard/runs", user)).status_code == 403
    detail = (await get(f"/dashboard/runs/{ids[0]}", acme)).json()
    assert detail["run"]["input"] == "what is 6*7?" and "42" in detail["run"]["output"]
    assert detail["run"]["usage"]["total_tokens"] == listed[1]["total_tokens"]
    hidden = await get(f"/dashboard/runs/{ids[0]}", evil)
    assert hidden.status_code == 404 and ids[0] in hidden.text  # as if unknown: only the id it asked for
    assert (await get("/dashboard/runs/run_unknown", acme)).status_code == 404
    assert (await get("/dashboard/runs?limit=0", acme)).status_code == 422


async def test_a_background_runs_drill_down_shows_its_tool_calls(
    asgi: tuple[httpx.AsyncClient, Runtime, RunSeries],
) -> None:
    client, runtime, _ = asgi
    await runtime.start_dispatcher()
    acme, _ = await runtime.keys.create_key("acme", "root", ["admin"])
    auth = {"Authorization": f"Bearer {acme}"}
    body = {"template": "analyst", "input": "please compute 12*7+3 with the calculator", "background": True}
    queued = await client.post("/v1/runs", json=body, headers=auth)
    assert queued.status_code == 202, queued.text
    run_id = queued.json()["run_id"]
    done = await client.get(f"/v1/runs/{run_id}/wait", params={"timeout": 30}, headers=auth)
    assert done.json()["status"] == "success", done.text
    detail = (await client.get(f"/dashboard/runs/{run_id}", headers=auth)).json()
    types = [event["type"] for event in detail["events"]]
    assert "tool_call" in types and "tool_result" in types and types[-1] == "final", types
    assert "token" not in types  # the answer is in the record


async def test_assets_are_served_from_the_package(asgi: tuple[httpx.AsyncClient, Runtime, RunSeries]) -> None:
    client, _, _ = asgi
    chart = await client.get("/dashboard/static/chart.umd.min.js")
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("text/javascript")
    assert b"Chart.js v4" in chart.content[:200]
    license_text = await client.get("/dashboard/static/chart.js.LICENSE.md")
    assert "MIT License" in license_text.text
    assert (await client.get("/dashboard/static/dashboard.js")).status_code == 200
    assert (await client.get("/dashboard/static/..%2Fdashboard.py")).status_code == 404
    assert (await client.get("/dashboard/static/missing.js")).status_code == 404


# -- the page in headless Chromium ----------------------------------------------------------------------
class DashboardServer:
    """The app with the dashboard, served by uvicorn in a thread (the runtime lives in its loop)."""

    def __init__(self, settings: Settings, clock: ManualClock) -> None:
        self.settings = settings
        self.series = RunSeries(clock=clock)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runtime: Runtime | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.runtime = await Runtime.create(self.settings, series=self.series)
        app = _wire(self.runtime, self.series, refresh_s=1.0, default_minutes=15)
        # log_config=None: uvicorn's access log propagates to the root logger, where caplog scans it
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=True)
        self.server = uvicorn.Server(config)
        try:
            await self.server.serve()
        finally:
            await self.runtime.aclose()

    def start(self) -> DashboardServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while self.server is None or not self.server.started:
            assert time.monotonic() < deadline and self._thread.is_alive(), "dashboard test server did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self._thread.join(30)

    def key(self, tenant: str, user: str, scopes: list[str], **limits: Any) -> str:
        assert self.runtime is not None and self.loop is not None
        coro = self.runtime.keys.create_key(tenant, user, scopes, **limits)
        plaintext, _ = asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)
        return str(plaintext)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make services does)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _make_runs(server: DashboardServer, clock: ManualClock) -> str:
    """Twelve simulated minutes of traffic: three templates, two models, rejections and errors."""
    admin = server.key("acme", "root", ["admin"])
    limited = server.key("acme", "bot", ["agents:run:*"], rpm=3)
    writer_only = server.key("acme", "carol", ["agents:run:writer"])
    start = clock.now - 11 * 60
    with httpx.Client(base_url=server.url, timeout=30) as client:

        def post(key: str, template: str, text: str, **extra: Any) -> int:
            body = {"template": template, "input": text, **extra}
            return client.post("/v1/runs", json=body, headers={"Authorization": f"Bearer {key}"}).status_code

        for minute in range(12):
            clock.now = start + minute * 60
            for i in range(1 + minute % 3):
                assert post(admin, "analyst", f"what is {i + 2} * {minute + 3}?") == 200
            for i in range(2 + minute % 2):
                extra = {"model": "offline:mini"} if i % 2 else {}
                assert post(admin, "writer", "write a haiku about queues " * (1 + i), **extra) == 200
            if minute % 2 == 0:
                assert post(admin, "searcher", "how do rate limits work?") == 200
            assert post(limited, "writer", "hi") in (200, 429)
            if minute % 4 == 1:
                assert post(admin, "no-such-template", "hi") == 404
            if minute % 5 == 2:
                assert post(writer_only, "analyst", "1+1") == 403
    return admin


@pytest.mark.browser
def test_dashboard_in_headless_chromium(
    tmp_path: Path, browser: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    access = logging.getLogger("uvicorn.access")  # an earlier server's default log config may have muted it
    monkeypatch.setattr(access, "propagate", True)
    monkeypatch.setattr(access, "handlers", [])
    monkeypatch.setattr(access, "level", logging.INFO)
    clock = ManualClock()
    settings = Settings(state_backend="memory", data_dir=tmp_path, offline_token_latency_ms=1.5)
    server = DashboardServer(settings, clock).start()
    try:
        admin = _make_runs(server, clock)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

        refused = page.goto(server.url + "/dashboard")
        assert refused is not None and refused.status == 401
        errors.clear()  # the browser reports the 401 of the login page itself as a console error
        assert page.request.get(server.url + "/dashboard/data").status == 401

        page.fill("#key", admin)
        page.click("button[type=submit]")
        # two refreshes: the first load and one live update (a selector, since the page's CSP forbids eval)
        page.wait_for_selector('body[data-refreshes]:not([data-refreshes="1"])', state="attached", timeout=15_000)
        filled = page.evaluate(
            """(ids) => Object.fromEntries(ids.map((id) => {
                const chart = Chart.getChart(document.getElementById(id));
                const values = chart ? chart.data.datasets.flatMap((d) => d.data).filter((v) => v) : [];
                return [id, {datasets: chart ? chart.data.datasets.length : 0, nonzero: values.length}];
            }))""",
            CHARTS,
        )
        for chart_id in CHARTS:
            assert filled[chart_id]["datasets"] > 0 and filled[chart_id]["nonzero"] > 0, (chart_id, filled)
        legends = page.evaluate(
            "(id) => Chart.getChart(document.getElementById(id)).data.datasets.map((d) => d.label)", "chart-tokens"
        )
        assert sorted(legends) == ["offline", "offline:mini"]
        problems = page.evaluate(
            "(id) => Chart.getChart(document.getElementById(id)).data.datasets.map((d) => d.label)", "chart-problems"
        )
        assert {"rate-limited", "error: template_not_found", "error: permission_denied"} <= set(problems)
        assert page.inner_text("#t-runs") != "\u2013" and int(page.inner_text("#t-rate")) > 0
        assert int(page.get_attribute("body", "data-runs") or 0) > 0  # the recent-runs table
        first = page.get_attribute("#runs tbody tr", "data-run-id")
        page.click("#runs tbody tr")
        page.wait_for_selector(f'body[data-detail="{first}"]', state="attached", timeout=15_000)
        assert "input" in page.inner_text("#run-fields") and page.is_visible("#run-detail")
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACT), full_page=True)
        assert not errors, errors
        context.close()
    finally:
        server.stop()
    assert "POST /dashboard/login" in caplog.text  # the access log was captured ...
    assert admin not in caplog.text  # ... and the key appears nowhere in it
