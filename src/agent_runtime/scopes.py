"""The scopes an API key or token may hold, which routes need them, and the defaults of a key without any.

| scope | grants |
|---|---|
| ``agents:run:<template>``, ``agents:run:*`` | running it (any template): runs, chat completions |
| ``sessions`` | ``/v1/sessions`` (create, list, read, messages, delete), and runs that name a session |
| ``usage`` | ``GET /v1/usage`` |
| ``store:read`` | the long-term store: ``GET /store/items``, item search, namespace listing |
| ``store:write`` | the long-term store: ``PUT`` and ``DELETE /store/items`` |
| ``models:override`` | a run's ``model`` other than ``offline`` |
| ``metrics:read`` | ``/metrics`` and ``/readyz``'s details when ``metrics_require_auth`` is on |
| ``dashboard:fleet`` | the dashboard's fleet view (with ``admin``) |
| ``admin`` / ``*`` | everything in its tenant (``*`` also holds every scope ``admin`` does), incl. ``/v1/keys`` |
| ``platform:admin`` | ``/v1/keys`` of every tenant (held exactly: ``admin`` does not imply it) |

A key or token with no scope at all holds ``DEFAULT_SCOPES`` (what such a key could always do).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agent_runtime.errors import ValidationError  # errors imports nothing of ours: safe for types.py

__all__ = [
    "ADMIN",
    "DASHBOARD_FLEET",
    "DEFAULT_SCOPES",
    "METRICS_READ",
    "MODELS_OVERRIDE",
    "PLATFORM_ADMIN",
    "RUN_PREFIX",
    "SESSIONS",
    "STORE_READ",
    "STORE_WRITE",
    "USAGE",
    "check_scopes",
    "run_scope",
]

ADMIN = "admin"
SESSIONS = "sessions"
USAGE = "usage"
MODELS_OVERRIDE = "models:override"
METRICS_READ = "metrics:read"
DASHBOARD_FLEET = "dashboard:fleet"
PLATFORM_ADMIN = "platform:admin"
STORE_READ = "store:read"
STORE_WRITE = "store:write"
RUN_PREFIX = "agents:run:"
DEFAULT_SCOPES = frozenset({SESSIONS, USAGE})
_FIXED = frozenset(
    {
        "*",
        ADMIN,
        SESSIONS,
        USAGE,
        MODELS_OVERRIDE,
        METRICS_READ,
        DASHBOARD_FLEET,
        STORE_READ,
        STORE_WRITE,
        PLATFORM_ADMIN,
    }
)
_TEMPLATE = re.compile(r"[A-Za-z0-9_.-]{1,200}|\*")


def run_scope(template: str) -> str:
    return RUN_PREFIX + template


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes, stripped; ``ValidationError`` naming every unknown one."""
    cleaned = frozenset(s.strip() for s in scopes if s.strip())
    unknown = sorted(s for s in cleaned if not _known(s))
    if unknown:
        raise ValidationError(
            f"unknown scopes {unknown}: choose from agents:run:<template>, agents:run:*, "
            f"{', '.join(sorted(_FIXED - {'*'}))}",
            details={"unknown": unknown},
        )
    return cleaned


def _known(scope: str) -> bool:
    if scope in _FIXED:
        return True
    return scope.startswith(RUN_PREFIX) and bool(_TEMPLATE.fullmatch(scope.removeprefix(RUN_PREFIX)))
