"""The backend registry: which URL each family gets, which module each scheme builds, typed refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime.backends import build, engines_in_use, families, parse_url, schemes, url_for
from agent_runtime.errors import ConfigurationError
from agent_runtime.settings import Settings, load_settings

CORE = {"sessions", "keys", "rate_limits", "quotas", "usage", "run_records", "run_registry", "events"}


def test_families_are_the_modules_of_the_package() -> None:
    assert CORE <= set(families())
    for family in CORE - {"events"}:
        assert {"memory", "sqlite", "redis", "postgresql"} <= set(schemes(family))
    assert set(schemes("events")) == {"memory", "redis", "kafka"}


def test_state_url_for_everything_and_per_family_urls_over_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_STATE_URL", "postgresql://db.internal/ar")
    monkeypatch.setenv("AGENT_RUNTIME_STATE_URLS__RATE_LIMITS", "redis://cache.internal:6380/0")
    settings = load_settings()
    assert url_for(settings, "sessions").engine == url_for(settings, "usage").engine == "postgresql"
    assert url_for(settings, "rate_limits").raw == "redis://cache.internal:6380/0"
    assert url_for(settings, "events").raw == "memory://"  # the bus follows EVENT_BUS, not state_url
    assert engines_in_use(settings, "postgresql") == ["postgresql://db.internal/ar"]
    assert engines_in_use(settings, "redis") == ["redis://cache.internal:6380/0"]


def test_the_legacy_pair_keeps_working(tmp_path: Path) -> None:
    assert url_for(Settings(state_backend="memory"), "keys").raw == "memory://"
    sqlite = url_for(Settings(state_backend="sqlite", data_dir=tmp_path), "quotas")
    assert sqlite.engine == "sqlite" and sqlite.path == (tmp_path / "agent-runtime.sqlite3").resolve()
    assert sqlite.sibling("quotas.sqlite3") == (tmp_path / "quotas.sqlite3").resolve()
    assert url_for(Settings(state_backend="redis", redis_url="redis://h:1/2"), "sessions").raw == "redis://h:1/2"
    assert url_for(Settings(event_bus="kafka", kafka_bootstrap_servers="k:9"), "events").raw == "kafka://k:9"


@pytest.mark.parametrize(
    ("family", "url", "expected"),
    [
        ("keys", "memory://", "MemoryKeyStore"),
        ("keys", "sqlite:///{tmp}/s.sqlite3", "SQLiteKeyStore"),
        ("keys", "redis://127.0.0.1:1/0", "RedisKeyStore"),
        ("keys", "postgresql://postgres@127.0.0.1:1/x", "PostgresKeyStore"),
        ("quotas", "postgres://postgres@127.0.0.1:1/x", "PostgresQuotaLedger"),
        ("rate_limits", "postgresql://postgres@127.0.0.1:1/x", "MemoryRateLimiter"),
        ("rate_limits", "redis://127.0.0.1:1/0", "FailOpenRateLimiter"),
        ("usage", "sqlite:///{tmp}/s.sqlite3", "SqliteUsageStore"),
        ("sessions", "postgresql://postgres@127.0.0.1:1/x", "PostgresSessionStore"),
        ("run_records", "postgresql://postgres@127.0.0.1:1/x", "PostgresRunRecordStore"),
        ("run_registry", "sqlite:///{tmp}/s.sqlite3", "SQLiteRunStore"),
        ("events", "memory://", "MemoryEventBus"),
    ],
)
async def test_each_scheme_builds_its_module(family: str, url: str, expected: str, tmp_path: Path) -> None:
    store = build(family, Settings(state_url=url.format(tmp=tmp_path)))
    try:
        assert type(store).__name__ == expected
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(state_url="mysql://h/db"), "no known scheme"),
        (Settings(state_url="localhost:6379"), "no known scheme"),
        (Settings(state_urls={"ratelimits": "redis://h"}), "unknown families"),
        (Settings(state_urls={"keys": "kafka://h:9"}), "keys cannot live on kafka"),
        (Settings(state_url="sqlite://"), "names its file"),
    ],
)
def test_bad_urls_are_configuration_errors(settings: Settings, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build("keys", settings)


def test_an_unknown_family_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown backend family"):
        build("nope", Settings())
    assert parse_url("POSTGRESQL://h/db").engine == "postgresql"
