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

.PHONY: fuzz run test lint format worker setup migrate demo bench clean browser dex-stubs

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

# Dex gRPC stubs (accounts/dex/generated/, not committed), rebuilt when the .proto changes.
# The proto path is mapped so that the stubs import each other as accounts.dex.generated.*.
DEX_PROTO := accounts/dex/protos/dex_api.proto
DEX_STUBS := accounts/dex/generated/dex_api_pb2.py
$(DEX_STUBS): $(DEX_PROTO) $(INSTALLED)
	$(PY) -m grpc_tools.protoc --proto_path=accounts/dex/generated=accounts/dex/protos \
		--python_out=. --pyi_out=. --grpc_python_out=. accounts/dex/generated/dex_api.proto

dex-stubs: $(DEX_STUBS)

setup: demo $(DEX_STUBS)

run: setup
	$(PY) manage.py runlomas --port $(PORT)

worker: $(INSTALLED)
	$(VENV)/bin/celery -A lomas worker --loglevel INFO \
		--queues $(LOMAS_QUEUE_PREFIX)query,$(LOMAS_QUEUE_PREFIX)dummy,$(LOMAS_QUEUE_PREFIX)cost

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(INSTALLED)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The admin pages' browser tests drive Debian's Chromium and ChromeDriver (installed as root, with apt-get).
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
		apt-get install -y -q --no-install-recommends chromium chromium-driver \
		|| { apt-get update -q && apt-get install -y -q --no-install-recommends chromium chromium-driver; }; }

test: setup $(CLIENT_INSTALLED) browser lint
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

# Benchmarks: tests/integration/bench_*.py against a live stack with the full demo (PostgreSQL + Redis);
# writes bench-results.json and prints it as one table. LOMAS_BENCH_QUICK=1: fewer repeats (a smoke test).
bench: setup $(CLIENT_INSTALLED)
	rm -f bench-results.json
	LOMAS_IT_FULL_DEMO=1 $(PY) -m pytest tests/integration -o python_files='bench_*.py' -s -q
	$(PY) tests/integration/bench_report.py bench-results.json

# Fuzzing (not part of `make test`): schemathesis over every operation of /api/schema, as a researcher
# and as an admin, against a throwaway server; prints the request count. Reports in var/fuzz/.
fuzz: setup
	$(PY) tests/fuzz/run_fuzz.py

clean:
	rm -rf var .pytest_cache .ruff_cache
