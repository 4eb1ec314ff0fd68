"""Declarative trigger rules: which events start which agent run, with what input and session.

A rules file (YAML or TOML) holds a ``triggers`` list::

    triggers:
      - name: analyse-uploads
        event: document.uploaded          # an exact type or a glob ("document.*")
        filter:                           # all must hold; paths start at payload or event
          - {path: payload.text, exists: true}
          - {path: payload.tags, contains: urgent}
          - {path: event.source, equals: crm}
        template: analyst
        input: "Please analyse: {payload.text}"
        session: per-event                # none | per-event | {mode: fixed, id: X} | {mode: field, field: payload.sid}

``input`` is a ``str.format``-style template, but only plain ``{payload.a.b}`` / ``{event.id}`` fields
are allowed: no indexing, attribute access, conversions or format specs, and lookups only walk dict
keys, so an event cannot reach anything but its own data. Bad rules fail at load time.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from agent_runtime._files import read_config_file
from agent_runtime._redis import check_key_part
from agent_runtime.errors import ConfigurationError, ValidationError
from agent_runtime.event_bus.events import Event
from agent_runtime.orchestration.middleware.auth import RUN_SCOPE_PREFIX
from agent_runtime.types import Principal

__all__ = ["FilterCondition", "SessionPolicy", "TriggerRule", "load_rules", "render_input", "resolve_path"]

_MISSING: Final = object()
_PATH_RE = re.compile(r"^(payload|event)(\.[A-Za-z0-9_\-]{1,100}){0,16}$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
_GLOB_CHARS = frozenset("*?[")
_IDS = uuid.UUID("5b0d7c1e-4f3a-4e43-9a57-6e0c1b7a2f10")
"""Namespace of the deterministic run / session ids derived from (rule, event)."""


def event_fields(event: Event) -> dict[str, Any]:
    """The ``event.*`` namespace rules may read: envelope fields, never the payload twice."""
    return {
        "id": event.id,
        "type": event.type,
        "tenant": event.tenant,
        "source": event.source,
        "correlation_id": event.correlation_id,
        "run_id": event.run_id,
        "depth": event.depth,
        "time": event.time.isoformat(),
    }


def resolve_path(event: Event, path: str) -> Any:
    """The value at a dotted path (``payload.a.b``, ``event.type``), or ``_MISSING``; walks dict keys only."""
    root, *keys = path.split(".")
    value: Any = event.payload if root == "payload" else event_fields(event)
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _check_path(path: str) -> str:
    if not _PATH_RE.fullmatch(path):
        raise ValueError(f"path {path!r} must be 'payload' or 'event' followed by .key parts (letters, digits, _ -)")
    return path


class FilterCondition(BaseModel):
    """One test on the event: exactly one of ``equals``, ``contains`` or ``exists`` at ``path``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    equals: Any = None
    contains: Any = None
    exists: bool | None = None

    @field_validator("path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        return _check_path(value)

    @model_validator(mode="after")
    def _one_test(self) -> FilterCondition:
        tests = self.model_fields_set & {"equals", "contains", "exists"}
        if len(tests) != 1:
            raise ValueError(f"filter on {self.path!r} needs exactly one of equals, contains, exists")
        return self

    def holds(self, event: Event) -> bool:
        value = resolve_path(event, self.path)
        if "exists" in self.model_fields_set:
            return (value is not _MISSING) is bool(self.exists)
        if value is _MISSING:
            return False
        if "equals" in self.model_fields_set:
            return bool(value == self.equals)
        if isinstance(value, str):
            return isinstance(self.contains, str) and self.contains in value
        if isinstance(value, list | dict):
            return self.contains in value
        return False


class SessionPolicy(BaseModel):
    """Which session a triggered run uses: none, a new one per event, a fixed id, or one named in the event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["none", "per-event", "fixed", "field"] = "none"
    id: str | None = None
    field: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _complete(self) -> SessionPolicy:
        if self.mode == "fixed":
            if self.id is None:
                raise ValueError("session mode 'fixed' needs an id")
            check_key_part(self.id, "session id")
        elif self.id is not None:
            raise ValueError("a session id is only allowed with mode 'fixed'")
        if self.mode == "field":
            if self.field is None:
                raise ValueError("session mode 'field' needs a field (e.g. payload.session_id)")
            _check_path(self.field)
        elif self.field is not None:
            raise ValueError("a session field is only allowed with mode 'field'")
        return self


class TriggerRule(BaseModel):
    """Event type (+ filter) -> template run with an input built from the event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    event: str
    """An exact event type or a glob over types (``run.*``)."""
    template: str
    input: str
    filter: tuple[FilterCondition, ...] = ()
    session: SessionPolicy = Field(default_factory=SessionPolicy)
    tenant: str | None = None
    """Tenant the runs belong to (default: the handler's); events of another tenant never match."""
    scopes: frozenset[str] | None = None
    """Scopes of the rule's service principal; default: exactly ``agents:run:<template>``."""
    model: str | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    max_depth: int | None = Field(default=None, ge=0)
    """A lower depth limit for this rule than the handler's."""
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value):
            raise ValueError("rule name must be 1-64 of a-z, 0-9, _ and -, starting with a letter or digit")
        return value

    @field_validator("event")
    @classmethod
    def _check_event(cls, value: str) -> str:
        if not value or len(value) > 200 or not re.fullmatch(r"[a-z0-9_.*?\[\]\-]+", value):
            raise ValueError("event must be a lowercase event type or glob such as 'document.*'")
        return value

    @field_validator("template", "tenant")
    @classmethod
    def _check_id(cls, value: str | None) -> str | None:
        return None if value is None else check_key_part(value, "template or tenant")

    @field_validator("input")
    @classmethod
    def _check_input(cls, value: str) -> str:
        _fields(value)
        return value

    @property
    def is_glob(self) -> bool:
        return not _GLOB_CHARS.isdisjoint(self.event)

    def matches(self, event: Event, default_tenant: str) -> bool:
        """Type, tenant and every filter condition hold (events without a tenant match any rule)."""
        if not self.enabled:
            return False
        if not (fnmatchcase(event.type, self.event) if self.is_glob else event.type == self.event):
            return False
        if event.tenant is not None and event.tenant != (self.tenant or default_tenant):
            return False
        return all(condition.holds(event) for condition in self.filter)

    def principal(self, default_tenant: str) -> Principal:
        """The rule's service principal: ``trigger:<name>`` with only the scopes the rule lists."""
        scopes = self.scopes if self.scopes is not None else frozenset({RUN_SCOPE_PREFIX + self.template})
        return Principal(tenant=self.tenant or default_tenant, user=f"trigger:{self.name}", scopes=scopes)

    def run_id_for(self, event: Event) -> str:
        """Deterministic per (rule, event): a redelivered event names the same run."""
        return "run_" + uuid.uuid5(_IDS, f"run/{self.name}/{event.id}").hex

    def session_for(self, event: Event) -> str | None:
        """The session id for this event under the rule's policy (``ValidationError`` if unusable)."""
        policy = self.session
        if policy.mode == "none":
            return None
        if policy.mode == "per-event":
            return "ses_" + uuid.uuid5(_IDS, f"session/{self.name}/{event.id}").hex
        if policy.mode == "fixed":
            return policy.id
        value = resolve_path(event, policy.field or "")
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ValidationError(f"event has no usable session id at {policy.field!r}")
        return check_key_part(value, "session id")

    def render_input(self, event: Event) -> str:
        return render_input(self.input, event)


def _fields(template: str) -> list[tuple[str, str | None]]:
    """Parse and check an input template: (literal, field) pairs; raises ``ValueError`` on anything unsafe."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"input template is malformed: {exc}") from None
    out: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parts:
        if field is not None:
            if spec or conversion:
                raise ValueError(f"input field {{{field}}}: format specs and conversions are not allowed")
            _check_path(field)
        out.append((literal, field))
    return out


def render_input(template: str, event: Event) -> str:
    """Fill ``{payload.x}`` / ``{event.x}`` fields from the event (strings as is, other values as JSON).

    Raises:
        ValidationError: a field is missing from the event.
    """
    pieces: list[str] = []
    for literal, field in _fields(template):
        pieces.append(literal)
        if field is None:
            continue
        value = resolve_path(event, field)
        if value is _MISSING:
            raise ValidationError(f"event {event.id} has no {field!r} for the input template")
        pieces.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))
    return "".join(pieces)


def parse_rules(data: Any, *, origin: str = "rules") -> list[TriggerRule]:
    """Rules from a loaded document: a mapping with a ``triggers`` list (or the list itself)."""
    items = data.get("triggers") if isinstance(data, Mapping) else data
    if items is None:
        items = []
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise ConfigurationError(f"{origin}: 'triggers' must be a list of rules")
    rules: list[TriggerRule] = []
    for index, item in enumerate(items):
        try:
            rules.append(TriggerRule.model_validate(item))
        except (PydanticValidationError, ValidationError) as exc:
            name = item.get("name", index) if isinstance(item, Mapping) else index
            raise ConfigurationError(f"{origin}: trigger {name!r} is invalid: {exc}") from None
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"{origin}: trigger names must be unique")
    return rules


def load_rules(path: Path | str) -> list[TriggerRule]:
    """Read a YAML, TOML or JSON rules file.

    Raises:
        ConfigurationError: unreadable file, unknown suffix or an invalid rule (named in the message).
    """
    file = Path(path)
    return parse_rules(read_config_file(file, "triggers", ConfigurationError), origin=str(file))
