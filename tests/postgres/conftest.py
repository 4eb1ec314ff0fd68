"""PostgreSQL fixtures: a fresh database per test, for tests that must start from an empty schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import PostgresDatabase


@pytest.fixture
def fresh_database() -> Iterator[PostgresDatabase]:
    """A database of its own, empty (no schema), dropped after the test."""
    database = PostgresDatabase()
    database.create()
    yield database
    database.drop()
