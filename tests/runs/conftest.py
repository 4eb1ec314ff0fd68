"""Fixtures of the run tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.runs.webhook_receiver import Receiver, serving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as state:
        yield state
