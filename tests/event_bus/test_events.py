"""The envelope and the catalogue."""

from __future__ import annotations

import pytest

from agent_runtime.errors import ValidationError
from agent_runtime.event_bus import CATALOGUE, Event, EventType, make_event


def test_json_roundtrip() -> None:
    event = make_event("run.completed", {"template": "analyst", "output": "395"}, tenant="acme", run_id="run_1")
    back = Event.from_json(event.to_json())
    assert back == event and back.id.startswith("evt_") and back.time.tzinfo is not None


def test_catalogue_types_are_versioned_and_validated() -> None:
    assert set(CATALOGUE) == {
        EventType.SESSION_CREATED,
        EventType.SESSION_EXPIRED,
        EventType.RUN_STARTED,
        EventType.RUN_COMPLETED,
        EventType.RUN_FAILED,
        EventType.RUN_QUEUED,
        EventType.RUN_CANCELLED,
        EventType.TOOL_CALLED,
        EventType.QUOTA_EXCEEDED,
        EventType.RATELIMIT_REJECTED,
    }
    assert make_event("session.created", {"session_id": "ses_1"}).schema_version == 1
    with pytest.raises(ValidationError, match=r"run\.failed"):
        make_event("run.failed", {"template": "writer"})  # error_code missing


def test_custom_types_allowed_bad_types_refused() -> None:
    assert make_event("document.uploaded", {"path": "a.txt"}).payload == {"path": "a.txt"}
    for bad in ("Upper.Case", "nodot", "a..b", "x" * 300 + ".y"):
        with pytest.raises(ValidationError):
            make_event(bad)


def test_malformed_json_is_a_typed_error() -> None:
    with pytest.raises(ValidationError):
        Event.from_json(b"{not json")
    with pytest.raises(ValidationError):
        Event.from_json('{"type": "run.started", "surprise": 1}')


def test_caused_event_carries_the_chain_and_depth() -> None:
    root = make_event("document.uploaded", {"path": "a"}, tenant="acme")
    child = root.caused("run.completed", {"template": "analyst"})
    grandchild = child.caused("run.started", {"template": "analyst"})
    assert (child.depth, grandchild.depth) == (1, 2)
    assert child.correlation_id == root.id == grandchild.correlation_id and grandchild.tenant == "acme"


def test_event_types_are_checked_whole() -> None:
    from pydantic import ValidationError as PydanticValidationError

    with pytest.raises(PydanticValidationError):
        Event(type="run.completed\n")
