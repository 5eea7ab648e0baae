# dbt-rdcrm: `make demo` shows the whole story against the local CRM emulator;
# `make test` runs lint and the whole test suite. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install lint format test test-fast demo bench chaos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The whole suite, spread over two processes (a file's tests stay together).
test: lint
	$(BIN)/pytest -n 2 --dist loadfile

# The inner loop: delivery rules, settings, client and emulator, no dbt build (well under 30 s).
test-fast: install
	$(BIN)/pytest -q tests/unit tests/client tests/emulator

demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

bench: install
	$(BIN)/python scripts/bench.py $(ARGS)

# The chaos campaign of issue 9 (minutes, not part of `make test`): CHAOS_ARGS="-n 100 -v"
chaos: install
	$(BIN)/python scripts/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) sample_project/target sample_project/logs sample_project/*.duckdb
