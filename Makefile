# Two commands: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY := $(BIN)/python
DEVSERVICES := $(PY) -m mastery_project.devservices
export PATH := $(BIN):$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: run test install setup browser lint format bench load services-start services-stop clean

$(VENV)/.installed: requirements/base.txt requirements/dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	@touch $@

install: $(VENV)/.installed

## run: the whole service (web + consumer + worker) on embedded PostgreSQL, Redis, Kafka.
## The web port is $PORT if set (0: any free one), else 8000, or a free one when 8000 is
## taken; the consumer's metrics port likewise from 9101. Both go to .devservices/ports.env.
run: install
	DJANGO_SETTINGS_MODULE=mastery_project.settings.local $(DEVSERVICES) run \
		--port PORT=8000 --port KAFKA_CONSUMER_METRICS_PORT=9101 -- \
		sh -c 'python manage.py migrate --noinput && python manage.py kafka_topics \
		&& python manage.py seed_demo && exec honcho start -f Procfile'

## browser: Debian's chromium for the browser tests, installed when missing and run as root;
## otherwise (or if apt-get fails) those tests report themselves skipped with the reason
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium could not be installed: the browser tests will be skipped"

## test: the same set-up, then every test against the real services
test: install browser
	DJANGO_SETTINGS_MODULE=mastery_project.settings.test $(DEVSERVICES) run -- \
		sh -c 'python manage.py check && python -m pytest $(PYTEST_ARGS)'

## bench: every SPEC §8 target beside its baseline from the same run, in a database of its
## own (BENCH_ARGS: --only ingest,api,... --size small|default|large --runs N); the API
## benchmark needs wrk (Debian's, installed here when missing and run as root)
bench: install
	@command -v wrk >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || \
		echo "wrk could not be installed: the API benchmark will say so and be left out"
	DJANGO_SETTINGS_MODULE=mastery_project.settings.local $(DEVSERVICES) run -- \
		python bench/run.py $(BENCH_ARGS)

## load: the locust school day (tests/load/) against a `make run` of its own (its own servers
## and ports, under a temporary DEVSERVICES_DIR) with a Kafka producer at a steady rate beside
## it; prints requests/s, p50/p95/p99 per endpoint and the error rate, then stops it all
## (LOAD_SECONDS=60, LOAD_USERS=300, LOAD_SPAWN_RATE=20, LOAD_KAFKA_RATE=50)
load: install
	$(PY) tests/load/run.py

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

services-start: install
	$(DEVSERVICES) start

services-stop: install
	$(DEVSERVICES) stop

clean: services-stop
	rm -rf .devservices
