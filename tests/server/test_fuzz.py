"""Schemathesis against /openapi.json over a real socket: no 500s, responses as documented.

Bounded: a fixed number of examples per operation (the whole file runs in well under a minute).
The fuzzing key may run every template but not override models, so no generated model string can
make the server reach out to a network address.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from agent_runtime.server.app import create_app
from agent_runtime.settings import Settings
from tests.server.conftest import LiveServer

MAX_EXAMPLES = 60
OPERATIONS = [
    (method.upper(), path)
    for path, methods in create_app(settings=Settings(state_backend="memory")).openapi()["paths"].items()
    for method in methods
]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(Settings(state_backend="memory", data_dir=tmp_path_factory.mktemp("fuzz"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fuzz_key(fuzz_server: LiveServer) -> str:
    return fuzz_server.key("fuzz", "fuzzer", ["agents:run:*", "sessions", "usage"])


@pytest.fixture(scope="module")
def api_schema(fuzz_server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_its_schema(
    method: str, path: str, api_schema: schemathesis.BaseSchema, fuzz_server: LiveServer, fuzz_key: str
) -> None:
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {fuzz_key}"}

    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=fuzz_server.url, headers=headers, timeout=30)

    check()
