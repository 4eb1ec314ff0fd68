"""The backend registry: every store of the runtime is built from a URL, by its scheme.

Like ``limits``' ``storage_from_string``: a *family* (sessions, keys, rate limits, quotas, usage, run
records, the run registry, the event bus, ...) is a module of this package declaring ``BUILDERS``, one
builder per URL scheme, and optionally ``default_url(settings)``. Adding a family is adding a module;
adding a backend is adding a scheme to the families it serves. Nothing here imports a backend library:
builders import their module when called.

Which URL a family gets: ``settings.state_urls[family]``, else the family's ``default_url`` (the event
bus follows ``EVENT_BUS``), else ``settings.state_url``, else the legacy pair ``STATE_BACKEND`` +
``REDIS_URL`` / ``DATA_DIR``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from agent_runtime.errors import ConfigurationError
from agent_runtime.settings import Settings

__all__ = [
    "SCHEMES",
    "BackendTarget",
    "Builder",
    "StateURL",
    "build",
    "engines_in_use",
    "families",
    "parse_url",
    "schemes",
    "url_for",
]

SCHEMES: Mapping[str, str] = {
    "memory": "memory",
    "sqlite": "sqlite",
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "kafka": "kafka",
}
"""URL scheme -> engine; the engine names the builder a family registers."""


@dataclass(frozen=True, slots=True)
class StateURL:
    """A parsed backend URL: ``engine`` picks the builder, ``raw`` is handed to the client library."""

    raw: str
    engine: str

    @property
    def path(self) -> Path:
        """The database file of a SQLite URL, as SQLAlchemy spells them: ``sqlite:///relative/file`` or
        ``sqlite:////absolute/file``."""
        path = urlsplit(self.raw).path[1:]
        if not path or path == "/":
            raise ConfigurationError(f"{self.raw!r}: a sqlite URL names its file, as sqlite:///path/to/state.sqlite3")
        return Path(path)

    def sibling(self, name: str) -> Path:
        """Another file beside the SQLite database (checkpoints and quotas have files of their own)."""
        return self.path.with_name(name)

    @property
    def server(self) -> str:
        """``host:port`` of a network URL (for logs and per-server circuit breakers)."""
        parts = urlsplit(self.raw)
        return f"{parts.hostname or '127.0.0.1'}:{parts.port or ''}"


@dataclass(frozen=True, slots=True)
class BackendTarget:
    """What a builder gets: its URL, the settings, and the caller's extra options."""

    family: str
    url: StateURL
    settings: Settings
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def extra(self) -> dict[str, Any]:
        """Options handed on to the store's constructor (``clock`` and the like); ``redis_client`` is
        taken by the Redis builders only."""
        return {k: v for k, v in self.options.items() if k != "redis_client"}


Builder = Callable[[BackendTarget], Any]


def parse_url(raw: str) -> StateURL:
    """Raises ``ConfigurationError`` for a URL of no known scheme."""
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    engine = SCHEMES.get(scheme.split("+", 1)[0])
    if engine is None:
        known = ", ".join(f"{s}://" for s in sorted(set(SCHEMES.values())))
        raise ConfigurationError(f"backend URL {raw!r} has no known scheme; use one of {known}")
    return StateURL(raw, engine)


@cache
def families() -> tuple[str, ...]:
    """Every family: the public modules of this package."""
    package = importlib.import_module(__package__ or "agent_runtime.backends")
    return tuple(sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")))


def _module(family: str) -> ModuleType:
    if family not in families():
        raise ConfigurationError(f"unknown backend family {family!r}; families: {', '.join(families())}")
    return importlib.import_module(f"{__package__}.{family}")


def schemes(family: str) -> tuple[str, ...]:
    """The engines a family has a module for."""
    return tuple(_module(family).BUILDERS)


def _legacy_url(settings: Settings) -> str:
    backend = settings.state_backend
    if backend == "redis":
        return settings.redis_url
    if backend == "sqlite":
        return f"sqlite:///{settings.sqlite_path.resolve()}"
    return "memory://"


def url_for(settings: Settings, family: str) -> StateURL:
    """The URL ``family`` is built on (see the module docstring for the order)."""
    module = _module(family)
    unknown = sorted(set(settings.state_urls) - set(families()))
    if unknown:
        raise ConfigurationError(f"state_urls names unknown families {unknown}; families: {', '.join(families())}")
    raw = settings.state_urls.get(family)
    if raw is None and hasattr(module, "default_url"):
        raw = module.default_url(settings)
    return parse_url(raw or settings.state_url or _legacy_url(settings))


def build(family: str, settings: Settings, *, url: str | None = None, **options: Any) -> Any:
    """The ``family`` store for ``settings`` (or for ``url``), by its URL's scheme.

    Raises:
        ConfigurationError: unknown family, unknown scheme, or no module of the family for that scheme.
    """
    target = parse_url(url) if url is not None else url_for(settings, family)
    builders: Mapping[str, Builder] = _module(family).BUILDERS
    builder = builders.get(target.engine)
    if builder is None:
        raise ConfigurationError(
            f"{family} cannot live on {target.engine} ({target.raw!r}); choose one of {', '.join(builders)}"
        )
    return builder(BackendTarget(family, target, settings, options))


def engines_in_use(settings: Settings, engine: str) -> list[str]:
    """The distinct URLs of ``engine`` that some family of ``settings`` lives on (to install breakers)."""
    return sorted({u.raw for family in families() if (u := url_for(settings, family)).engine == engine})
