# Everyday verbs. `make demo` and `make test` set themselves up on a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format serve sandbox bench bench-audit clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/simpul demo

# The suite runs twice: on SQLite (the embedded default), then on PostgreSQL
# (SIMPUL_TEST_POSTGRES_URL, default the local `test` database). Without a reachable server the
# second pass skips its database tests and says why; CI sets SIMPUL_REQUIRE_POSTGRES=1.
test: $(STAMP) lint
	$(BIN)/pytest -q
	SIMPUL_TEST_DATABASE=postgresql $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

serve: $(STAMP)
	$(BIN)/simpul serve

# Load test on loopback (broker, sandbox backends and load generator on this machine); prints
# the report and writes bench-results/<time>.json. Options: make bench BENCH_ARGS="--duration 10".
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Audit log figures beside same-run baselines: durable appends/s, verifying and proving at
# 1,000,000 records (AUDIT_BENCH_RECORDS=... for another size). Prints; asserts nothing.
bench-audit: $(STAMP)
	$(BIN)/python -m bench.audit_bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
