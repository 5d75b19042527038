# Quick start: `make run` (the product on SQLite and a filesystem broker) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: run test bench lint install install-dev clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Development: DEBUG on (plain http, the development keys); production settings are described in README.md.
# Other ports: make run PORT=8001 SANDBOX_PORT=8026 (the web server, the provider emulator). run_all creates
# the demo data, its sender on the emulator's port, and restarts any of its processes that dies.
run: export DEBUG ?= true
run: PORT ?= 8000
run: SANDBOX_PORT ?= 8025
run: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py run_all --port $(PORT) --sandbox-port $(SANDBOX_PORT)

test: $(VENV)/.installed-dev
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	$(PY) bench/bench_delivery.py $(BENCH_DELIVERY_ARGS)
	$(PY) bench/bench_import.py $(BENCH_IMPORT_ARGS)
	$(PY) bench/bench_preflight.py $(BENCH_PREFLIGHT_ARGS)
	$(PY) bench/bench_dashboard.py $(BENCH_DASHBOARD_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

clean:
	rm -rf var/ .pytest_cache
