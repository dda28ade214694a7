# Every target creates the virtualenv and installs the locked dependencies first, so a fresh
# machine needs nothing but python3 (and Java 17 + Maven for the Apache Kafka test broker).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.synced
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install dev test lint fmt typecheck migrate bench message-schemas clean

install: $(STAMP)

# The first run downloads every dependency: say what happens, how big and how long it took.
$(STAMP): uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	@set -e; started=$$(date +%s); \
	if ! test -x $(BIN)/python; then \
		echo "make: creating the virtualenv $(VENV)…"; $(PYTHON) -m venv $(VENV); fi; \
	if ! test -x $(BIN)/uv; then \
		echo "make: installing uv $(UV_VERSION)…"; \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); fi; \
	echo "make: installing the locked dependencies (uv sync --frozen)…"; \
	$(BIN)/uv sync --frozen --all-packages --quiet; \
	echo "make: $(VENV) ready ($$(du -sm $(VENV) | cut -f1) MB) in $$(( $$(date +%s) - started )) s"
	@touch $@

dev: $(STAMP)
	$(BIN)/python -m sourcing.devstack.dev

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check libs services tests bench
	$(BIN)/ruff format --check libs services tests bench
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format libs services tests bench
	$(BIN)/ruff check --fix libs services tests bench

typecheck: $(STAMP)
	$(BIN)/mypy libs services

migrate: $(STAMP)
	$(BIN)/python -m sourcing.common.migrate upgrade head

bench: $(STAMP)
	$(BIN)/python -m bench

# Rewrite the payload-schema snapshots of every message type (on purpose only: see README,
# "The event contract (AsyncAPI)").
message-schemas: $(STAMP)
	$(BIN)/python -m tests.message_schemas

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
