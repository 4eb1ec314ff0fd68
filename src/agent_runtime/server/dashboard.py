"""``/dashboard``: a live page of this worker's runs, latency, tokens, cost, errors and rejections.

Routes (all under ``/dashboard``):

- ``GET /dashboard``: the page (HTML). Without valid credentials it answers 401 with a login form,
  with a key lacking the ``admin`` scope 403.
- ``POST /dashboard/login``: form field ``key``; on success sets the dashboard cookie and redirects
  (303) to the page. ``POST /dashboard/logout`` clears it.
- ``GET /dashboard/data?minutes=N[&view=fleet]``: the JSON snapshot the page polls every few seconds.
- ``GET /dashboard/runs?limit=N[&status=S]``: the tenant's recent runs (the run records: status,
  template, duration, tokens, cost), newest first; ``GET /dashboard/runs/{run_id}``: one run with its
  input, output, error, attempts and the events it streamed (tool calls and results, steps), when the
  run event log still holds them. Another tenant's run is 404, like an unknown one.
- ``GET /dashboard/static/{name}``: the page's script and style and the vendored Chart.js (public
  code, no data, so served without credentials).

Credentials: ``Authorization: Bearer <key or JWT>`` (scripts, proxies that inject it) or the
``agent_runtime_dashboard`` cookie that the login form sets. A browser cannot send a bearer header on
navigation, and a key in the URL (``?key=``) would land in access logs, browser history and
``Referer`` headers, so the key travels once in a POST body and then in an ``HttpOnly``,
``SameSite=Strict`` cookie scoped to ``/dashboard`` (``Secure`` on https). The cookie holds the key
itself, so every request re-verifies it: revoking the key ends the dashboard session at once, and
any worker can verify it (no per-process session secret). Nothing here logs the key.

Scope: ``admin`` holders see their own tenant's runs (admin is tenant-scoped). ``view=fleet``, every
run the worker served, needs the exact ``fleet_scope`` (``dashboard:fleet`` by default), which only
an operator grants with ``agent-runtime keys create``. The data is per worker process (see
:mod:`agent_runtime.monitoring.timeseries`); ``/metrics`` is the fleet-wide view.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Annotated, Any, Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from agent_runtime.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from agent_runtime.monitoring.timeseries import RunSeries
from agent_runtime.runs.base import RunFilter, RunRecordStore
from agent_runtime.runs.events.base import RunEventLog
from agent_runtime.runs.record import Run
from agent_runtime.scopes import DASHBOARD_FLEET
from agent_runtime.types import GRAPH_EVENT_TYPES, Principal

__all__ = ["COOKIE_NAME", "FLEET_SCOPE", "Authenticate", "build_dashboard_router"]

COOKIE_NAME: Final = "agent_runtime_dashboard"
FLEET_SCOPE: Final = DASHBOARD_FLEET
ADMIN_SCOPE: Final = "admin"
_MAX_FORM_BYTES: Final = 16_384

Authenticate = Callable[[Request, str | None], Awaitable[Principal]]
"""Verifies a token (API key or JWT) and returns its principal, raising ``AuthenticationError``
(``agent_runtime.server.deps.authenticate`` in the service)."""
SeriesSource = RunSeries | Callable[[Request], RunSeries]
RunsSource = Callable[[Request], RunRecordStore | None]
"""The run record store of the service (``None`` where runs are not recorded)."""
EventsSource = Callable[[Request], RunEventLog | None]
_MAX_EVENTS_SHOWN: Final = 500
_RUN_ID: Final = r"^[A-Za-z0-9_.:-]{1,128}$"

_STATIC: Final = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "chart.umd.min.js": "text/javascript; charset=utf-8",
    "chart.js.LICENSE.md": "text/markdown; charset=utf-8",
}
_VENDORED: Final = {
    "chart.umd.min.js": "vendor/chartjs/chart.umd.min.js",
    "chart.js.LICENSE.md": "vendor/chartjs/LICENSE.md",
}
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


def _asset(name: str) -> bytes:
    return (resources.files("agent_runtime.server") / "static" / name).read_bytes()


def _token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE_NAME) or None


def build_dashboard_router(
    series: SeriesSource,
    authenticate: Authenticate,
    *,
    refresh_s: float = 5.0,
    default_minutes: int = 60,
    fleet_scope: str = FLEET_SCOPE,
    cookie_max_age_s: int = 8 * 3600,
    runs: RunsSource | None = None,
    events: EventsSource | None = None,
) -> APIRouter:
    """The dashboard routes, to ``app.include_router(...)``.

    Args:
        series: the worker's ``RunSeries``, or a function of the request that returns it (when the
            runtime is only built in the app's lifespan).
        authenticate: turns a token into a principal; the router then requires the ``admin`` scope.
        refresh_s: how often the page polls ``/dashboard/data``.
        default_minutes: the window the page shows first.
        fleet_scope: the exact scope that unlocks ``view=fleet`` (all tenants' runs on this worker).
        cookie_max_age_s: lifetime of the login cookie.
        runs / events: where the recent-runs table and a run's drill-down read from.
    """
    router = APIRouter(prefix="/dashboard", include_in_schema=False)
    assets = {name: _asset(_VENDORED.get(name, name)) for name in _STATIC}
    page = _asset("dashboard.html").decode()
    login = _asset("login.html").decode()

    def series_of(request: Request) -> RunSeries:
        return series if isinstance(series, RunSeries) else series(request)

    async def admin(request: Request, token: str | None) -> Principal:
        principal = await authenticate(request, token)
        if not principal.allows(ADMIN_SCOPE):
            raise PermissionDeniedError("the dashboard needs the 'admin' scope", details={"scope": ADMIN_SCOPE})
        return principal

    def login_page(status: int, message: str = "") -> HTMLResponse:
        body = login.replace("{{message}}", html.escape(message))
        headers = dict(_HEADERS)
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return HTMLResponse(body, status_code=status, headers=headers)

    @router.get("", response_class=HTMLResponse)
    async def dashboard(request: Request) -> Response:
        try:
            principal = await admin(request, _token(request))
        except AuthenticationError:
            message = "Your key was not accepted; enter it again." if _token(request) else ""
            return login_page(401, message)
        except PermissionDeniedError:
            return login_page(403, "This key does not hold the admin scope.")
        body = (
            page.replace("{{tenant}}", html.escape(principal.tenant))
            .replace("{{refresh_ms}}", str(int(refresh_s * 1000)))
            .replace("{{minutes}}", str(default_minutes))
            .replace("{{fleet}}", "true" if fleet_scope in principal.scopes else "false")
        )
        return HTMLResponse(body, headers=_HEADERS)

    @router.post("/login")
    async def dashboard_login(request: Request) -> Response:
        body = await request.body()
        fields = parse_qs(body[:_MAX_FORM_BYTES].decode("utf-8", "replace"), max_num_fields=4)
        key = (fields.get("key") or [""])[0].strip()
        try:
            await admin(request, key or None)
        except AuthenticationError:
            return login_page(401, "That key was not accepted.")
        except PermissionDeniedError:
            return login_page(403, "This key does not hold the admin scope.")
        response = RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
        response.set_cookie(
            COOKIE_NAME,
            key,
            max_age=cookie_max_age_s,
            path="/dashboard",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    @router.post("/logout")
    async def dashboard_logout() -> Response:
        response = RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
        response.delete_cookie(COOKIE_NAME, path="/dashboard", httponly=True, samesite="strict")
        return response

    @router.get("/data")
    async def dashboard_data(
        request: Request,
        minutes: Annotated[int, Query(ge=1, le=1440)] = default_minutes,
        view: Annotated[str, Query(pattern="^(tenant|fleet)$")] = "tenant",
    ) -> Response:
        principal = await admin(request, _token(request))
        fleet = view == "fleet"
        if fleet and fleet_scope not in principal.scopes:
            raise PermissionDeniedError(
                f"the fleet view needs the {fleet_scope!r} scope", details={"scope": fleet_scope}
            )
        snapshot: dict[str, Any] = series_of(request).snapshot(tenant=principal.tenant, fleet=fleet, minutes=minutes)
        return JSONResponse(snapshot, headers={"Cache-Control": "no-store"})

    if runs is not None:
        _add_run_routes(router, admin, runs, events)

    @router.get("/static/{name}")
    async def dashboard_static(name: str) -> Response:
        content = assets.get(name)
        if content is None:
            raise NotFoundError("no such dashboard asset")
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return Response(content, media_type=_STATIC[name], headers=headers)

    return router


def _row(run: Run) -> dict[str, Any]:
    """One line of the recent-runs table."""
    usage = run.usage or {}
    started = run.started_at or run.created_at
    return {
        "run_id": run.run_id,
        "status": run.status,
        "template": run.template,
        "session_id": run.session_id,
        "created_at": run.created_at,
        "duration_ms": round((run.ended_at - started) * 1000, 1) if run.ended_at else None,
        "total_tokens": int(usage.get("total_tokens", 0)),
        "cost_usd": float(usage.get("cost_usd", 0.0)),
        "attempts": run.attempts,
        "background": run.background,
    }


async def _streamed(log: RunEventLog | None, run_id: str) -> list[dict[str, Any]]:
    """What the run streamed, as far as the bounded event log still holds it (no waiting)."""
    if log is None:
        return []
    shown: list[dict[str, Any]] = []
    async for logged in log.read(run_id, follow=False):
        event = logged.event
        if event.type == "token" or event.type in GRAPH_EVENT_TYPES:  # the record holds the answer and state
            continue
        shown.append({"id": logged.id, "type": event.type, "step": event.step, "data": event.data})
        if len(shown) >= _MAX_EVENTS_SHOWN:
            break
    return shown


def _add_run_routes(
    router: APIRouter,
    admin: Callable[[Request, str | None], Awaitable[Principal]],
    runs: RunsSource,
    events: EventsSource | None,
) -> None:
    def store_of(request: Request) -> RunRecordStore:
        store = runs(request)
        if store is None:
            raise NotFoundError("runs are not recorded by this service")
        return store

    @router.get("/runs")
    async def dashboard_runs(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        status: Annotated[str | None, Query(pattern=r"^[a-z]+$")] = None,
    ) -> Response:
        principal = await admin(request, _token(request))
        found = await store_of(request).find(RunFilter(tenant=principal.tenant, status=status, limit=limit))
        return JSONResponse({"runs": [_row(run) for run in found]}, headers={"Cache-Control": "no-store"})

    @router.get("/runs/{run_id}")
    async def dashboard_run(request: Request, run_id: Annotated[str, Path(pattern=_RUN_ID)]) -> Response:
        principal = await admin(request, _token(request))
        run = await store_of(request).get(run_id, tenant=principal.tenant)
        if run is None:
            raise NotFoundError(f"run {run_id} not found")
        streamed = await _streamed(events(request) if events is not None else None, run_id)
        body = {"run": run.public() | _row(run), "events": streamed}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})
