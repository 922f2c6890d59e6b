# ML Studio — the two commands: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test install install-test lint format system-deps clean bench

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test
	test -x var/node/node_modules/.bin/azurite-blob || ! command -v npm >/dev/null || \
		npm install --no-save --silent --prefix var/node azurite@3

## Install, migrate, create the first admin, serve on http://127.0.0.1:$(PORT) with a worker.
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_admin
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py runstudio --port $(PORT)

## Install the test dependencies, lint, and run the whole suite
## (PostgreSQL/Redis when DATABASE_URL/REDIS_URL point at them, SQLite otherwise).
test: install-test lint
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Benchmark our tracking server against `mlflow server` on the local PostgreSQL;
## prints the table and writes var/bench/last.md. `make bench BENCH_ARGS=--quick` for a smoke test.
bench: install-test
	pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | tail -1) main start
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## System packages the browser tests need (Debian; run as root).
system-deps:
	command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core; }

clean:
	rm -rf $(VENV) var/static var/test-*.sqlite3* var/sdk-venv-* var/ci
