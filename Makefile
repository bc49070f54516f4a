# StreamFlow Ops: `make demo` and `make test` are the whole quick start.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null)
PG_BIN ?= /usr/lib/postgresql/15/bin
PYTEST_ARGS ?=

.PHONY: help venv system-deps pg-install monitoring-install java-install redis-install celery celery-stop browser-install test image-check demo bench ui ui-stop sandbox-start sandbox-stop sandbox-status sandbox-env clean

help:
	@echo "make demo   - install, start the sandbox, run the maintenance window and a health sweep, stop"
	@echo "make test   - install and run the whole test suite against real local services"
	@echo "make bench  - benchmarks (outside CI); results in bench/results/"
	@echo "make ui     - sandbox + airflow standalone on 127.0.0.1; make ui-stop stops it all"
	@echo "make celery - sandbox + a distributed Airflow (CeleryExecutor, Redis, 2 workers); make celery-stop"
	@echo "make sandbox-start|sandbox-stop|sandbox-status|sandbox-env"

# --- installation -------------------------------------------------------------------------------
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-flink.txt
	@if [ -z "$(UV)" ]; then $(PYTHON) -m pip install -q "uv==0.13.8"; fi
	@uv venv -q --allow-existing --python $(PYTHON) $(VENV)
	uv pip install -q --python $(PY) --compile-bytecode -r requirements-dev.txt
	uv pip install -q --python $(PY) --compile-bytecode --no-deps -r requirements-flink.txt
	@touch $@

venv: $(VENV)/.installed

system-deps: pg-install monitoring-install java-install redis-install

pg-install:
	@if [ -x "$(PG_BIN)/postgres" ]; then exit 0; fi; \
	if [ "$$(id -u)" != "0" ]; then \
	  echo "PostgreSQL 15 server is missing and installing it needs root: run 'sudo make pg-install' or 'sudo apt-get install postgresql-15'" >&2; exit 1; fi; \
	echo "installing PostgreSQL 15 from Debian's packages"; \
	mkdir -p /etc/postgresql-common && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null

# Prometheus (with promtool), Alertmanager and the Pushgateway: the sandbox's monitoring stack and `promtool test rules`.
monitoring-install:
	@if [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] && [ -x /usr/bin/prometheus-alertmanager ] \
	  && [ -x /usr/bin/prometheus-pushgateway ]; then exit 0; fi; \
	if [ "$$(id -u)" != "0" ]; then \
	  echo "Prometheus, Alertmanager or the Pushgateway is missing: run 'sudo make monitoring-install' or 'sudo apt-get install prometheus prometheus-alertmanager prometheus-pushgateway'" >&2; exit 1; fi; \
	echo "installing Prometheus, Alertmanager and the Pushgateway from Debian's packages"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager prometheus-pushgateway >/dev/null

java-install:
	@if command -v javac >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != "0" ]; then \
	  echo "Java is missing (the sandbox's Flink needs a JDK 17): run 'sudo apt-get install openjdk-17-jdk-headless'" >&2; exit 1; fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null

redis-install:
	@if [ -x /usr/bin/redis-server ]; then exit 0; fi; \
	if [ "$$(id -u)" != "0" ]; then \
	  echo "redis-server is missing (the Celery sandbox's broker): run 'sudo apt-get install redis-server'" >&2; exit 1; fi; \
	echo "installing redis-server from Debian's packages"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null

browser-install:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	if [ "$$(id -u)" != "0" ]; then \
	  echo "Chromium is missing (browser tests need it): run 'sudo apt-get install chromium'" >&2; exit 1; fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

# --- the two commands ---------------------------------------------------------------------------
# A skipped test fails the run (tests/image/no_skips.py); image-check first: it is quick and fails early.
test: venv system-deps browser-install image-check
	@$(VENV)/bin/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: treat as a failure" >&2; exit 1; fi; exit $$rc

# What `astro dev pytest` and `astro dev parse` run, in a venv shaped like the Astro Runtime image.
image-check: venv
	@$(PY) -m tests.image.image_check

demo: venv system-deps
	@$(PY) -m scripts.demo

bench: venv system-deps
	@$(PY) -m bench

# --- sandbox ------------------------------------------------------------------------------------
sandbox-start: venv system-deps
	@$(PY) -m sandbox start
sandbox-stop:
	@$(PY) -m sandbox stop
sandbox-status:
	@$(PY) -m sandbox status
sandbox-env:
	@$(PY) -m sandbox env

# --- a distributed Airflow: CeleryExecutor, Redis, two workers (sandbox/celery.py) ----------------
celery: venv system-deps
	@$(PY) -m sandbox start --celery
celery-stop:
	@$(PY) -m sandbox stop --celery

# --- the Airflow UI: sandbox + airflow standalone on 127.0.0.1 ---------------------------------
ui: venv system-deps
	@$(PY) -m scripts.ui start
ui-stop:
	@$(PY) -m scripts.ui stop

clean: sandbox-stop
	rm -rf .sandbox
