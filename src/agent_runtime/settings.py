"""Runtime settings: one pydantic-settings class, read once at start-up and passed down.

Environment variables use the prefix ``AGENT_RUNTIME_`` (nested sections with ``__``, e.g.
``AGENT_RUNTIME_LIMITS__MAX_INPUT_CHARS``). A TOML or YAML file named by ``AGENT_RUNTIME_CONFIG_FILE``
provides defaults that the environment overrides.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "EventBusSettings",
    "LimitSettings",
    "PostgresSettings",
    "RedisSettings",
    "ReliabilitySettings",
    "ResponsesSettings",
    "RunSettings",
    "SessionSettings",
    "Settings",
    "StoreSettings",
    "load_settings",
]


class RedisSettings(BaseModel):
    """Client-side bounds for every Redis connection the runtime opens."""

    max_connections: int = 64
    """Size of the blocking connection pool; callers wait (bounded) instead of failing at the cap."""
    pool_timeout: float = 5.0
    """Seconds a caller waits for a free pooled connection."""
    connect_timeout: float = 1.0
    socket_timeout: float = 2.0
    key_prefix: str = "ar"


class PostgresSettings(BaseModel):
    """Client-side bounds for every PostgreSQL pool the runtime opens (``AGENT_RUNTIME_POSTGRES__...``)."""

    max_connections: int = Field(default=4, ge=1)
    """Connections of one store's pool (each family on PostgreSQL has its own pool, the checkpointer too);
    callers wait up to ``pool_timeout`` for one instead of opening more."""
    min_connections: int = Field(default=1, ge=0)
    pool_timeout: float = Field(default=5.0, gt=0)
    """Seconds a caller waits for a free pooled connection before ``BackendError`` (503)."""
    connect_timeout: float = Field(default=2.0, gt=0)
    statement_timeout_ms: int = Field(default=5_000, ge=0)
    """Server-side bound of every statement (``SET statement_timeout``); 0: none."""
    migrate_on_start: bool = True
    """Apply pending schema migrations when a store first connects (under an advisory lock); with
    ``False`` a store refuses to run on an older schema: run ``agent-runtime migrate`` first."""


class LimitSettings(BaseModel):
    """Bounds on what a single request may ask for."""

    max_input_chars: int = 32_000
    run_timeout_s: float = 120.0
    max_output_tokens: int = 1024
    max_request_bytes: int = 1_000_000
    max_events_per_run: int = 10_000
    max_sessions_per_user: int = 1_000
    max_history_messages: int = 200
    session_ttl_s: float = 7 * 24 * 3600
    approval_ttl_s: float = Field(default=24 * 3600, gt=0)
    """How long a run paused for approval outside any session waits for approve / edit / reject; its
    implicit session (and checkpoint) then expires. A run in a named session follows that session's TTL."""
    session_lock_timeout_s: float = 30.0
    session_lease_s: float = 30.0
    """How long a session's run lock outlives a worker that died holding it (renewed while it lives)."""
    session_busy_policy: Literal["wait", "fail"] = "wait"


class SessionSettings(BaseModel):
    """How much LangGraph state a session keeps."""

    checkpoint_history: int | None = Field(default=20, ge=0)
    """Checkpoints kept per session thread besides the latest, pruned as new ones are written (the
    Agent Protocol's thread history and forks reach this far back); ``None`` keeps them all."""


class EventBusSettings(BaseModel):
    """Bounds and layout of the event bus (``AGENT_RUNTIME_EVENTS__...``)."""

    namespace: str = "default"
    """Stream / topic suffix: buses with the same namespace share events."""
    memory_max_queue: int = 10_000
    """Per-group queue bound of the memory bus; a full queue makes publish wait, then fail."""
    publish_timeout_s: float = 1.0
    redis_maxlen: int = 100_000
    """Approximate stream length kept by Redis (XADD MAXLEN ~)."""
    claim_min_idle_s: float = 30.0
    """Pending Redis entries idle this long are taken over from their (presumed dead) consumer."""
    kafka_partitions: int = 4
    kafka_idempotent: bool = True


class ReliabilitySettings(BaseModel):
    """Failure policies (``AGENT_RUNTIME_RELIABILITY__...``); README "Failure policies" explains each."""

    breaker_failures: int = Field(default=5, ge=1)
    """Consecutive Redis connection failures or timeouts that open the process's circuit breaker."""
    breaker_cooldown_s: float = Field(default=2.0, gt=0)
    """How long an open breaker refuses Redis calls at once before letting one probe through."""
    rate_limit_on_backend_error: Literal["fail_open", "fail_closed"] = "fail_open"
    """``fail_open``: while Redis is down, limit with a local per-worker limiter; ``fail_closed``: 503."""
    retry_budget_per_minute: int | None = Field(default=60, ge=0)
    """Retries (``execute_with_retry`` / stream retries) one tenant may make per minute in one worker;
    ``None``: no budget (each run still stops at its ``max_retries``)."""
    run_heartbeat_s: float = Field(default=10.0, gt=0)
    """How often a worker marks its runs older than this as still alive (one batched write)."""
    run_abandon_after_s: float = Field(default=60.0, gt=0)
    """A run whose heartbeat is older than this is ``abandoned`` by the reaper (its worker died)."""
    run_registry_flush_s: float = Field(default=0.25, gt=0)
    """A run is written to the run registry once it has run this long (short runs cost no write); a
    worker killed sooner than about twice this after a run started leaves no record to reap."""
    reaper_interval_s: float = Field(default=30.0, gt=0)
    """How often a server process looks for abandoned runs (also once at start-up)."""
    abandoned_run_charge: Literal["reserved", "release"] = "reserved"
    """What an abandoned run's quota reservation turns into: its reserved upper bound, or nothing."""
    accounting_journal_max_entries: int = Field(default=100_000, ge=1)
    """Unapplied quota settles a worker's accounting journal (``DATA_DIR/accounting-journal.sqlite3``,
    sqlite and redis backends) may hold while the state backend is down; when full, runs with a quota
    are refused with 503 (``accounting_journal_full``)."""


class WebhookSettings(BaseModel):
    """Where a finished background run may be POSTed (``AGENT_RUNTIME_RUNS__WEBHOOKS__...``): ``runs.webhooks``."""

    allowed_hosts: list[str] = Field(default_factory=list)
    """Hosts a run's ``webhook`` may name: ``hooks.example.com``, ``*.example.com`` (any subdomain) or an IP
    literal; empty (the default): webhooks are refused. An IP in a private, loopback or link-local
    range is accepted only when listed itself."""
    secret: SecretStr | None = None
    """Server secret each tenant's signing key is derived from (HMAC-SHA256); required with ``allowed_hosts``."""
    allow_http: bool = False
    """Also accept ``http://`` URLs (the signature still holds, the body travels in clear)."""
    max_attempts: int = Field(default=6, ge=1, le=50)
    max_elapsed_s: float = Field(default=300.0, gt=0)
    """A delivery gives up (``failed``) after this long or ``max_attempts``, whichever comes first."""
    backoff_s: float = Field(default=0.5, gt=0)
    """First retry delay; doubled each attempt (up to ``backoff_max_s``), with full jitter."""
    backoff_max_s: float = Field(default=30.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    """Per attempt: connect, send and read the answer."""
    max_concurrent: int = Field(default=16, ge=1)
    max_pending: int = Field(default=1_000, ge=1)
    """Deliveries waiting or retrying in one process; past it a run's delivery is recorded ``failed``."""

    @model_validator(mode="after")
    def _secret_with_hosts(self) -> WebhookSettings:
        if self.allowed_hosts and self.secret is None:
            raise ValueError("runs.webhooks.secret is required when runs.webhooks.allowed_hosts is set")
        return self


class RunSettings(BaseModel):
    """Run records and background runs (``AGENT_RUNTIME_RUNS__...``); README "Runs" explains them."""

    max_concurrent_runs: int = Field(default=8, ge=1)
    """Background runs one worker process executes at the same time."""
    max_queued_runs: int = Field(default=1000, ge=1)
    """Background runs waiting in one worker; beyond it a submission gets 503 with ``Retry-After``."""
    retention_s: float = Field(default=7 * 86_400, gt=0)
    """How long a finished run's record is kept."""
    max_runs_per_tenant: int = Field(default=10_000, ge=1)
    """Finished run records kept per tenant (the oldest go first)."""
    record_foreground: bool = True
    """Also record runs answered in their own request (HTTP, chat completions, CLI), not only background ones."""
    lease_s: float = Field(default=30.0, gt=0)
    """How long a worker holds a background run without renewing it; a run whose lease ran out (its
    worker died) is claimed by another worker and resumed from its last checkpoint."""
    heartbeat_s: float = Field(default=10.0, gt=0)
    """How often a worker renews the leases of the runs it executes (must be under half of ``lease_s``)."""
    max_attempts: int = Field(default=3, ge=1)
    """Claims of one run (its first start and each take-over after a worker died); past it the run ends
    ``error`` with code ``max_attempts``."""
    scan_s: float = Field(default=1.0, gt=0)
    """How often a worker looks in the run store for runs whose lease expired, and (SQLite) for pending
    runs another process of the host stored."""
    events_ttl_s: float = Field(default=3_600.0, gt=0)
    """How long a run's streamed events are kept after its last one (``GET /v1/runs/{run_id}/stream``)."""
    max_events_per_run: int = Field(default=10_000, ge=1)
    """Streamed events kept per run (the oldest go first; a join after one that fell out gets 410)."""
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> RunSettings:
        if self.heartbeat_s * 2 > self.lease_s:
            raise ValueError("runs.heartbeat_s must be at most half of runs.lease_s")
        return self


class CronSettings(BaseModel):
    """Schedules that start background runs (``AGENT_RUNTIME_CRONS__...``); README "Crons" explains them."""

    scheduler: bool = True
    """Run the scheduler in this process (``serve`` and ``worker``); every process may: a tick fires once."""
    poll_s: float = Field(default=1.0, gt=0)
    """How often the scheduler looks for due ticks (the most a run starts after its tick)."""
    max_per_tenant: int = Field(default=100, ge=1, le=10_000)
    """Schedules one tenant may hold."""
    batch: int = Field(default=100, ge=1)
    """Due schedules one scheduler pass fires at most (the rest wait for the next pass)."""


class StoreSettings(BaseModel):
    """Long-term memory store bounds, per tenant (``AGENT_RUNTIME_STORE__...``)."""

    max_item_bytes: int = Field(default=64 * 1024, ge=1)
    """Largest JSON-encoded value one item may hold; a bigger one is refused (422)."""
    max_items_per_tenant: int = Field(default=10_000, ge=1)
    """Items one tenant may keep (all its users together); a new item beyond it is refused (409).
    Concurrent writers may each pass the check once, so the bound may be exceeded by their number."""
    max_namespace_depth: int = Field(default=8, ge=1, le=64)
    """Labels a client's namespace may have (the tenant and user labels are added on top)."""
    max_label_chars: int = Field(default=128, ge=1)
    max_key_chars: int = Field(default=256, ge=1)
    max_page: int = Field(default=1000, ge=1)
    """Largest ``limit`` of a search or namespace listing."""
    max_offset: int = Field(default=100_000, ge=0)
    index_embed: str | None = None
    """Switch on semantic search (``query``): ``offline`` (hashing, no provider) or an embeddings model
    string (``openai:text-embedding-3-small``). Memory and SQLite (sqlite-vec) only; ``None``: no index."""
    index_dims: int = Field(default=256, ge=1, le=8192)
    """Vector size; must match the embeddings model."""
    index_fields: list[str] = Field(default_factory=lambda: ["$"])
    """Which parts of a value are embedded (JSON paths; ``$``: the whole value)."""


class ResponsesSettings(BaseModel):
    """How long and how many stored ``/v1/responses`` objects are kept (``AGENT_RUNTIME_RESPONSES__...``)."""

    ttl_s: float = Field(default=30 * 24 * 3600, gt=0)
    """A stored response (and the conversation ``previous_response_id`` continues) lives this long."""
    max_per_user: int = Field(default=1000, ge=1)
    """Stored responses one (tenant, user) keeps; storing one more evicts the oldest."""


class Settings(BaseSettings):
    """Everything configurable about the runtime."""

    model_config = SettingsConfigDict(
        env_prefix="AGENT_RUNTIME_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    state_backend: Literal["memory", "sqlite", "redis"] = "sqlite"
    """Where sessions, API keys, rate limits and quotas live (when ``state_url`` is unset)."""
    state_url: str | None = None
    """Every family's backend by URL (``memory://``, ``sqlite:///path``, ``redis://...``, ``postgresql://...``);
    unset: ``state_backend`` with ``redis_url`` / ``data_dir``. See ``agent_runtime.backends``."""
    state_urls: dict[str, str] = Field(default_factory=dict)
    """Per-family URLs over ``state_url`` (``AGENT_RUNTIME_STATE_URLS__RATE_LIMITS=redis://...``); keys are
    the families of ``agent_runtime.backends`` (sessions, keys, rate_limits, quotas, usage, ...)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    data_dir: Path = Path("./.agent-runtime")
    event_bus: Literal["memory", "redis", "kafka"] = "memory"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    model: str = ""
    """Default model string; empty means ``offline`` unless a provider key is configured."""
    offline_token_latency_ms: float = 0.0
    """Per-token delay of the offline model, so benchmarks can imitate a real provider."""
    log_level: str = "INFO"
    log_inputs: bool = False
    templates_dir: Path | None = None
    documents_dir: Path | None = None
    price_file: Path | None = None
    triggers_file: Path | None = None
    """YAML or TOML file with a ``triggers`` list of rules for ``agent-runtime consume``."""
    middlewares: list[str] = Field(default_factory=lambda: ["auth", "rate_limit", "cost", "logging"])
    api_key_cache_s: float = Field(default=5.0, ge=0)
    """How long a worker reuses an API key record it read (0: read it on every request). A key revoked
    through another worker keeps working on this one for up to this long."""
    api_key_pepper: SecretStr | None = None
    """Server secret mixed into API key hashes (HMAC-SHA256); changing it invalidates every key."""
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    default_rpm: int | None = None
    default_tpm: int | None = None
    metrics_tenant_allowlist: list[str] = Field(default_factory=list)
    metrics_require_auth: bool = False
    """Serve ``/metrics`` (and ``/readyz``'s details) only to principals with ``metrics:read`` (or admin).
    Off by default: then anyone who reaches the port reads them, so keep it private (``serve`` warns
    when it listens on a non-loopback host with this off)."""
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the API (CORS), e.g. ``["https://smith.langchain.com"]`` for
    LangGraph Studio or Agent Chat UI's origin; empty (the default): no CORS headers at all."""
    redis: RedisSettings = Field(default_factory=RedisSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    events: EventBusSettings = Field(default_factory=EventBusSettings)
    reliability: ReliabilitySettings = Field(default_factory=ReliabilitySettings)
    runs: RunSettings = Field(default_factory=RunSettings)
    crons: CronSettings = Field(default_factory=CronSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    responses: ResponsesSettings = Field(default_factory=ResponsesSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        config_file = os.environ.get("AGENT_RUNTIME_CONFIG_FILE")
        if config_file:
            sources.append(_file_source(settings_cls, Path(config_file)))
        return tuple(sources)

    def resolved_model(self) -> str:
        """The default model string: the configured one, else ``offline``."""
        return self.model or "offline"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "agent-runtime.sqlite3"


def _file_source(settings_cls: type[BaseSettings], path: Path) -> PydanticBaseSettingsSource:
    from pydantic_settings import TomlConfigSettingsSource, YamlConfigSettingsSource

    from agent_runtime.errors import ConfigurationError

    if not path.is_file():
        raise ConfigurationError(f"config file {path} does not exist")
    if path.suffix == ".toml":
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    if path.suffix in (".yaml", ".yml"):
        return YamlConfigSettingsSource(settings_cls, yaml_file=path)
    raise ConfigurationError(f"config file {path} must be .toml, .yaml or .yml")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment (and config file), turning pydantic errors into ours."""
    from pydantic import ValidationError as PydanticValidationError

    from agent_runtime.errors import ConfigurationError

    try:
        return Settings(**overrides)
    except PydanticValidationError as exc:
        raise ConfigurationError(f"invalid settings: {exc}") from exc
