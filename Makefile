# lomas-django: `make run` serves the demo, `make test` runs the whole suite.
# Both create the virtualenv when needed and re-install only when a requirements file changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CLIENT_VENV := .venv-client
CLIENT_INSTALLED := $(CLIENT_VENV)/.installed
PORT ?= 8000

# Development defaults; production sets its own environment (see README).
export DJANGO_DEBUG ?= true

.PHONY: run test lint format worker setup migrate demo bench clean

$(INSTALLED): requirements-torch.txt requirements.txt requirements-nodeps.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-torch.txt
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

$(CLIENT_INSTALLED): requirements-torch.txt requirements-client.txt
	test -x $(CLIENT_VENV)/bin/python || $(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/python -m pip install --quiet -r requirements-torch.txt
	$(CLIENT_VENV)/bin/python -m pip install --quiet -r requirements-client.txt
	touch $@

migrate: $(INSTALLED)
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py lomas_demo_setup

setup: demo

run: setup
	$(PY) manage.py runlomas --port $(PORT)

worker: $(INSTALLED)
	$(VENV)/bin/celery -A lomas worker --loglevel INFO \
		--queues $(LOMAS_QUEUE_PREFIX)query,$(LOMAS_QUEUE_PREFIX)dummy,$(LOMAS_QUEUE_PREFIX)cost

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(INSTALLED)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup $(CLIENT_INSTALLED) lint
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

# Benchmarks: tests/integration/bench_*.py against a live stack with the full demo (PostgreSQL + Redis);
# prints a table and writes bench-results.json.
bench: setup $(CLIENT_INSTALLED)
	rm -f bench-results.json
	LOMAS_IT_FULL_DEMO=1 $(PY) -m pytest tests/integration -o python_files='bench_*.py' -s -q
	cat bench-results.json

clean:
	rm -rf var .pytest_cache .ruff_cache
