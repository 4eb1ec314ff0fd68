# agent-runtime: `make run` serves on embedded defaults, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest services bench soak peer clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

HOST ?= 127.0.0.1
PORT ?= 8000

run: $(STAMP)
	$(BIN)/agent-runtime serve --host $(HOST) --port $(PORT)

# What the tests need beyond Python packages: a redis-server binary (the tests start their own
# servers on free ports), promtool to check the alert rules, and Debian's Chromium for the dashboard test;
# PostgreSQL: its binaries (fault tests run their own server) and the machine's server on 127.0.0.1:5432
# (contract suites create and drop a database of their own there).
services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql)
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster $$(ls /usr/lib/postgresql | sort -n | tail -1) main start || \
		echo "PostgreSQL is not running on 127.0.0.1:5432: the postgres tests will fail"
	@command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
	@command -v promtool >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) || \
		echo "chromium could not be installed: the browser test will fail"
	@test -d tests/agent_protocol/clients/js/node_modules || (command -v npm >/dev/null && \
		npm ci --prefix tests/agent_protocol/clients/js --no-audit --no-fund --silent) || \
		echo "npm ci failed: the JavaScript client test will try again"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	@out="$$($(BIN)/radon cc -n D src)"; test -z "$$out" || (echo "functions above radon grade C:"; echo "$$out"; exit 1)

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) services
	$(BIN)/pytest -q -p no:cacheprovider

test: $(STAMP) services lint typecheck pytest

bench: $(STAMP) services
	$(BIN)/python benchmarks/run_all.py

# LangGraph's server in a venv of its own, for the side-by-side benchmarks (benchmarks/peer-requirements.txt)
peer: $(STAMP)
	test -x .peer-venv/bin/python || $(PYTHON) -m venv .peer-venv
	.peer-venv/bin/python -m pip install --quiet -r benchmarks/peer-requirements.txt -e .

soak: $(STAMP) services
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) .peer-venv .agent-runtime .pytest_cache .mypy_cache .ruff_cache
