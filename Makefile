# ML Studio — the two commands: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test install install-test lint format system-deps test-system-deps clean bench compat docker-base

# What the tests need from the system (Debian's packages): Chromium, which the browser
# tests launch at $(CHROMIUM), fonts to render pages with, and bubblewrap, the sandbox
# remote runs execute in (deployments/runner); a Docker engine (docker.io) and debootstrap,
# with which scripts/build_base_image.sh makes the offline base image that image builds
# start FROM (deployments/tests/test_images_docker.py builds and runs one).
CHROMIUM := /usr/bin/chromium
SYSTEM_PACKAGES := chromium fonts-dejavu-core bubblewrap docker.io debootstrap
SYSTEM_DEPS_PRESENT = test -x $(CHROMIUM) && command -v bwrap >/dev/null 2>&1 && \
	command -v dockerd >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 && \
	{ ! command -v dpkg >/dev/null 2>&1 || dpkg -s fonts-dejavu-core >/dev/null 2>&1; }
# SKIP_BROWSER_TESTS=1 make test: the suite without Chromium, its browser tests reported
# as skipped. The only way to skip them: otherwise a missing Chromium is a failure.
SKIP_BROWSER := $(filter 1 true yes,$(SKIP_BROWSER_TESTS))
export SKIP_BROWSER_TESTS

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

## Install the system packages and the test dependencies, lint, and run the whole suite
## (PostgreSQL/Redis when DATABASE_URL/REDIS_URL point at them, SQLite otherwise).
test: test-system-deps install-test lint
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Benchmark our tracking server against `mlflow server` on the local PostgreSQL, and
## remote runs against `mlflow run`; prints the table and writes var/bench/last.md. `make bench BENCH_ARGS=--quick` for a smoke test.
bench: install-test
	pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | tail -1) main start
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## Run mlflow's own live-server REST tests, unmodified, against fresh workspaces of a studio
## started for the run: `make compat MLFLOW_TESTS=/path/to/mlflow-checkout` (the folder
## holding mlflow's tests/). Prints the counts and writes var/compat/report.md.
## COMPAT_TARGET=native runs the same selection against mlflow's own server.
compat: install-test
	@test -n "$(MLFLOW_TESTS)" || { echo "make compat: set MLFLOW_TESTS to the folder holding mlflow's tests/" >&2; exit 2; }
	$(BIN)/python tests/compat/run.py --mlflow-tests "$(MLFLOW_TESTS)" --target $${COMPAT_TARGET:-studio} $(COMPAT_ARGS)

## System packages the browser tests and the remote-run sandbox need (Debian; run as root).
system-deps:
	$(SYSTEM_DEPS_PRESENT) || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); }

# Before `make test`: the system packages are there, or installed now (as root, with apt),
# or the run stops here with the command that installs them.
test-system-deps:
ifneq ($(SKIP_BROWSER),)
	@echo "SKIP_BROWSER_TESTS=$(SKIP_BROWSER_TESTS): Chromium is not needed; the browser tests will be skipped."
else
	@if $(SYSTEM_DEPS_PRESENT); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing what the browser tests need: $(SYSTEM_PACKAGES)"; \
		$(MAKE) --no-print-directory system-deps; \
	elif command -v apt-get >/dev/null 2>&1; then \
		if command -v sudo >/dev/null 2>&1; then install="sudo make -C $(CURDIR) system-deps"; \
		else install="su -c 'make -C $(CURDIR) system-deps'"; fi; \
		printf '%s\n' \
			"make test: the browser tests need the packages $(SYSTEM_PACKAGES) (Chromium at $(CHROMIUM)), and some are missing." \
			"Install them as root, then run make test again:" \
			"    $$install" \
			"Or run the suite without the browser tests (reported as skipped):" \
			"    SKIP_BROWSER_TESTS=1 make test" >&2; \
		exit 1; \
	else \
		printf '%s\n' \
			"make test: the browser tests need Chromium at $(CHROMIUM), and this machine has no apt-get to install it." \
			"Install Chromium so that $(CHROMIUM) runs it, or run the suite without the browser tests:" \
			"    SKIP_BROWSER_TESTS=1 make test" >&2; \
		exit 1; \
	fi
endif

## Start a Docker engine if none answers (as root: no iptables, no bridge, host networking)
## and build the offline base image mlstudio/python:3.11-bookworm if it is missing.
docker-base:
	scripts/build_base_image.sh

clean:
	rm -rf $(VENV) var/static var/test-*.sqlite3* var/sdk-venv-* var/ci
